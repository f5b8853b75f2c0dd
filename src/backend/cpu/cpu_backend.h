#pragma once
#include <memory>

#include "backend/backend.h"

namespace wedlm {

// fp32 activations; weights read in place from the checkpoint (memory map or synthetic buffers).
std::unique_ptr<Backend> make_cpu_backend();

}  // namespace wedlm
