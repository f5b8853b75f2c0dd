#pragma once
// The TMA-fed GEMM kernels of WeDLM steps (GEMV variants 8-13, gemv.h): weights and x staged in
// shared memory through the TMA engine for 64 output features a block, multiplied by mma.sync
// (variants 8-11) or warpgroup MMA (12-13, sm_90a builds on compute capability 9.0).
#include <cuda_runtime.h>

#include "backend/cuda/gemm.h"

namespace wedlm::cuda {

constexpr int kFirstBulkVariant = 8;
constexpr int kBulkVariants = 6;

// Whether bulk variant `variant` takes these operands beyond the common GEMV conditions (<= 32
// rows, alignment): n % 64 == 0, k a multiple of 128 x its split, its cluster fits this GPU, and
// for 12-13 the warpgroup-MMA code exists for this GPU.
bool gemm_bulk_supported(const GemmArgs& g, int variant);
void launch_gemm_bulk(const GemmArgs& g, int variant, cudaStream_t stream);

}  // namespace wedlm::cuda
