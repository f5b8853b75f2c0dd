#include "util/dtype.h"

#include <immintrin.h>

namespace wedlm {

float f16_to_float(std::uint16_t bits) { return _cvtsh_ss(bits); }

std::uint16_t float_to_f16(float value) {
  return static_cast<std::uint16_t>(_cvtss_sh(value, _MM_FROUND_TO_NEAREST_INT));
}

}  // namespace wedlm
