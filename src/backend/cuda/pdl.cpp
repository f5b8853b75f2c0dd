#include "backend/cuda/pdl.h"

#include <atomic>
#include <cstdlib>

namespace wedlm::cuda {

namespace {

std::atomic<bool>& enabled() {
  static std::atomic<bool> on{[] {
    const char* env = std::getenv("WEDLM_CUDA_PDL");
    return !(env != nullptr && *env == '0');
  }()};
  return on;
}

}  // namespace

bool pdl_enabled() { return enabled().load(std::memory_order_relaxed); }
void set_pdl_enabled(bool on) { enabled().store(on, std::memory_order_relaxed); }

}  // namespace wedlm::cuda
