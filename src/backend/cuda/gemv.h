#pragma once
// out = x W^T (+ bias) for a few rows (decoding): warps stream weight rows once with 16-byte
// loads, several in flight, the first before the kernel waits for its predecessor (pdl.h), and
// apply them to every row of x. cuBLASLt's kernels for these shapes reached 58-91% of the copy
// bandwidth; Gemm times these kernels against them per shape and keeps the fastest. Fusions:
// silu(gate) * up in the epilogue (GemmArgs::silu_mul: every variant but 2), the sublayer's
// add_rmsnorm in the prologue (GemmArgs::in_norm: variants 5 and 6, 1-2 rows, k <= 4096).
#include "backend/cuda/gemm.h"

namespace wedlm::cuda {

constexpr std::int64_t kGemvMaxRows = 8;      // variants 0, 1 (CUDA cores)
constexpr std::int64_t kGemvMmaMaxRows = 32;  // variants 2-4 and 7 (tensor cores)
// Variants 0 and 1 differ in the weight loads each lane keeps in flight (4 or 8 16-byte
// vectors): which streams faster depends on the shape. Variants 2-4 use mma.sync and serve up
// to 32 rows (WeDLM steps), where x re-read per feature would swamp L1; they give a block 16,
// 32 or 64 output features (more features a block: fewer passes over x, fewer blocks).
// Variants 5 and 6 stream (4 or 8 vectors a batch) with a grid that fits on the GPU at once,
// each warp owning a run of consecutive features (k a multiple of 1024 or 2048).
// Variant 7 (<= 32 rows, n % 64 == 0, k % 128 == 0) stages x in shared memory for 64 features
// a block: the WeDLM-step GEMM. Variants 8-13 (<= 32 rows, n % 64 == 0) stage weights and x in
// shared memory through the TMA engine for 64 features a block (gemm_bulk.h): 8-11 with 4 (8:
// variant 11) mma.sync consumer warps, k whole or split 2 or 4 ways (k a multiple of 128 x that;
// the splits are a thread block cluster that adds them up); 12-13 with a warpgroup-MMA consumer
// and a deeper ring, k split 2 ways (sm_90a builds, compute capability 9.0).
constexpr int kGemvVariants = 14;
// Whether a variant takes these operands (and fusions): k and the row strides multiples of 8
// elements, 16-byte aligned pointers, rows within the variant's limit, and the variant's own
// conditions above (variants 2-4: n a multiple of the block's features and k % 32 == 0).
bool gemv_supported(const GemmArgs& args, int variant);
// Whether the tuner times a variant: all of them, but the TMA variants 8-13 not with
// WEDLM_CUDA_TMA_GEMM=0 (for A/B measurements). Forced (WEDLM_CUDA_FORCE_GEMV, tests), every
// variant runs.
bool gemv_timed(int variant);
// The tuner times a candidate after this kernel (~3 us on every multiprocessor, launched for
// programmatic overlap), as a forward runs a GEMM after a light kernel: the GEMV variants load
// their first weights under it (before pdl_wait()), cuBLASLt's kernels start after it. Timed back
// to back instead, a variant whose block fills a multiprocessor's shared memory could not start
// before the previous run's blocks left, and lost the overlap it has in a forward.
void launch_tuning_spacer(cudaStream_t stream);
void launch_gemv(const GemmArgs& args, int variant, cudaStream_t stream);
const char* gemv_variant_name(int variant);

}  // namespace wedlm::cuda
