#include "backend/backend.h"

#include "backend/cpu/cpu_backend.h"
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
      fail("the CUDA backend is not available in this build yet; use --device cpu");
  }
  fail("unknown device");
}

}  // namespace wedlm
