#pragma once
// out = x W^T (+ bias) for a few rows (decoding): one warp per output feature streams that
// weight row once with 16-byte loads, several in flight, and applies it to every row of x
// (which stays in L1/L2). cuBLASLt's kernels for these shapes reached 58-91% of the copy
// bandwidth; Gemm times this kernel against them per shape and keeps the faster.
#include "backend/cuda/gemm.h"

namespace wedlm::cuda {

constexpr std::int64_t kGemvMaxRows = 8;

// Whether the kernel takes these operands: rows <= kGemvMaxRows, k and the row strides
// multiples of 8 elements, 16-byte aligned pointers.
bool gemv_supported(const GemmArgs& args);
void launch_gemv(const GemmArgs& args, cudaStream_t stream);

}  // namespace wedlm::cuda
