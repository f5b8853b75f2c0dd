#pragma once
// Element types of checkpoint tensors and their scalar conversions.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace wedlm {

enum class DType : std::uint8_t { F32, F16, BF16 };

inline std::size_t dtype_size(DType dtype) { return dtype == DType::F32 ? 4 : 2; }

inline std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
  }
  return "?";
}

inline float bf16_to_float(std::uint16_t bits) {
  std::uint32_t wide = static_cast<std::uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &wide, sizeof value);
  return value;
}

// Round to nearest even, as torch does when casting float32 to bfloat16.
inline std::uint16_t float_to_bf16(float value) {
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu) != 0) return 0x7fc0;  // NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<std::uint16_t>(bits >> 16);
}

float f16_to_float(std::uint16_t bits);
std::uint16_t float_to_f16(float value);

// Reads element `index` of a tensor of type `dtype` as fp32.
inline float load_as_float(const void* data, DType dtype, std::size_t index) {
  switch (dtype) {
    case DType::F32: return static_cast<const float*>(data)[index];
    case DType::BF16: return bf16_to_float(static_cast<const std::uint16_t*>(data)[index]);
    case DType::F16: return f16_to_float(static_cast<const std::uint16_t*>(data)[index]);
  }
  return 0.0f;
}

}  // namespace wedlm
