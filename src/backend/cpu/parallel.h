#pragma once
// Below this many floating-point operations a parallel region costs more than it saves (and
// under CPU contention an OpenMP barrier can stall for a whole scheduler tick), so small ops
// run on the calling thread.
#include <cstdint>

namespace wedlm::cpu {

inline bool worth_parallel(std::int64_t work) { return work >= (std::int64_t{1} << 17); }

}  // namespace wedlm::cpu
