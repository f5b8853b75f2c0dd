#include "backend/backend.h"

#include "backend/cpu/cpu_backend.h"
#ifdef WEDLM_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif
#include "util/error.h"

namespace wedlm {

DeviceKind parse_device(const std::string& name) {
  if (name == "cpu") return DeviceKind::Cpu;
  if (name == "cuda") return DeviceKind::Cuda;
  fail("unknown device '{}' (expected cpu or cuda)", name);
}

std::unique_ptr<Backend> make_backend(DeviceKind kind) {
  switch (kind) {
    case DeviceKind::Cpu: return make_cpu_backend();
    case DeviceKind::Cuda:
#ifdef WEDLM_HAVE_CUDA
      return make_cuda_backend();
#else
      fail("this build has no CUDA backend (configure with -DWEDLM_CUDA=ON where nvcc exists); use --device cpu");
#endif
  }
  fail("unknown device");
}

}  // namespace wedlm
