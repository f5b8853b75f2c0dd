#pragma once
// Whether skinny GEMMs may run on the GEMV kernel (gemv.h) instead of cuBLASLt: where it times
// faster per shape (the default), always where it applies (tests), or never.
namespace wedlm::cuda {

enum class GemvMode { Timed, Always, Never };

}  // namespace wedlm::cuda
