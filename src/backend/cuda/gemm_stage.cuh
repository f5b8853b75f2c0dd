#pragma once
// The stage of the TMA-fed GEMM kernels (gemm_bulk.h, gemm_streamk.h): 64 output features x 128 k
// of the weights and all rows x the same k of x in shared memory, each as two 64-k halves of
// 128-byte swizzled rows ([half][rows][128 B]: what ldmatrix and wgmma read), and what the
// kernels do with one: copy it in, multiply it, write outputs.
#include <cuda.h>
#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/activation.cuh"
#include "backend/cuda/gemm.h"
#include "backend/cuda/tensor_map.h"
#include "backend/cuda/tma.cuh"
#include "backend/cuda/wgmma.cuh"

namespace wedlm::cuda {

constexpr int kBulkChunk = 128;                        // k a stage: two 64-k (128-byte) swizzle spans
constexpr int kBulkWeightBytes = 64 * kBulkChunk * 2;  // a stage's 64 features

template <int TILES>
__host__ __device__ constexpr int bulk_stage_bytes() {
  return kBulkWeightBytes + TILES * 8 * kBulkChunk * 2;
}

// Global row of a tile's local feature f (SILU: 0-31 gate rows, 32-63 the matching up rows).
template <bool SILU>
__device__ __forceinline__ std::int64_t bulk_feature(const GemmArgs& g, std::int64_t tile, int f) {
  if constexpr (SILU) return (f >= 32 ? g.n / 2 : 0) + tile * 32 + f % 32;
  return tile * 64 + f;
}

// A stage's copies, each issued by its own lane (a copy costs the issuing thread ~150-300 ns
// whatever its size up to ~8 KB: bench/cuda_stream_bench.cu): the weights as one box of 64 rows x
// both halves (a chunked map), or with SILU four 32-row x 64-k boxes (gate and up rows are n / 2
// apart: copy b is half b / 2, rows (b % 2) * 32 ..), then x as one box of both halves.
template <bool SILU>
__host__ __device__ constexpr int stage_weight_copies() {
  return SILU ? 4 : 1;
}

template <bool SILU>
inline CUtensorMap stage_weight_map(const GemmArgs& g) {
  return SILU ? cached_bf16_tensor_map(g.w, g.n, g.k, g.k, 32) : cached_bf16_tensor_map(g.w, g.n, g.k, g.k, 64, kBulkChunk / 64);
}
template <int TILES>
inline CUtensorMap stage_x_map(const GemmArgs& g) {
  return cached_bf16_tensor_map(g.x, g.rows, g.k, g.ldx, TILES * 8, kBulkChunk / 64);
}

// Copy `copy` (< stage_weight_copies<SILU>() + 1) of the stage of `tile` at k into `stage`.
template <bool SILU, int TILES>
__device__ __forceinline__ void issue_stage_copy(const GemmArgs& g, const CUtensorMap& w_map, const CUtensorMap& x_map,
                                                 unsigned stage, unsigned bar, std::int64_t tile, int k, int copy) {
  if (copy == stage_weight_copies<SILU>()) {
    tma_load_chunks(stage + kBulkWeightBytes, x_map, 0, k / 64, bar);
  } else if constexpr (SILU) {
    const int h = copy / 2, box = copy % 2;
    tma_load(stage + h * (kBulkWeightBytes / 2) + box * 32 * 128, w_map, k + h * 64,
             static_cast<int>(bulk_feature<SILU>(g, tile, box * 32)), bar);
  } else {
    tma_load_chunks(stage, w_map, static_cast<int>(tile * 64), k / 64, bar);
  }
}

#ifdef WEDLM_WGMMA_DEVICE
// d (64 local features x TILES * 8 rows, a warpgroup's wgmma accumulators: wgmma.cuh) += the
// stage's weights x its x^T, 16 k a step; returns with the multiplies done.
template <int TILES>
__device__ __forceinline__ void multiply_stage(float (&d)[TILES * 4], unsigned stage) {
  constexpr int kXHalf = TILES * 8 * 128;
  std::uint64_t a_steps[8], b_steps[8];
#pragma unroll
  for (int ks = 0; ks < 8; ++ks) {
    const unsigned at = static_cast<unsigned>((ks % 4) * 32);
    a_steps[ks] = smem_desc(stage + (ks / 4) * (kBulkWeightBytes / 2) + at, 16, 1024);
    b_steps[ks] = smem_desc(stage + kBulkWeightBytes + (ks / 4) * kXHalf + at, 16, 1024);
    pin_descriptor(a_steps[ks]);
    pin_descriptor(b_steps[ks]);
  }
  fence_registers(d);
  wgmma_fence();
#pragma unroll
  for (int ks = 0; ks < 8; ++ks) wgmma_ss<TILES * 8>(d, a_steps[ks], b_steps[ks]);
  wgmma_commit();
  wgmma_wait<0>();
  fence_registers(d);
}
#endif

// Outputs of local feature f (SILU: gate f < 32, up in `up`) for rows r0 .. r0 + 3 (< rows):
// bias, then bf16 (SILU: silu(gate) * up on bf16-rounded sums, as the separate kernel does).
template <bool SILU>
__device__ __forceinline__ void store_outputs(const GemmArgs& g, std::int64_t tile, int f, int r0, int rows,
                                              float (&v)[4], float (&up)[4]) {
  const std::int64_t feature = bulk_feature<SILU>(g, tile, f);
  const float bias = g.bias != nullptr ? __bfloat162float(g.bias[feature]) : 0.0f;
  const float bias_up = SILU && g.bias != nullptr ? __bfloat162float(g.bias[feature + g.n / 2]) : 0.0f;
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const int r = r0 + e;
    if (r >= rows) break;
    if (g.bias != nullptr) v[e] += bias;
    if constexpr (SILU) {
      if (g.bias != nullptr) up[e] += bias_up;
      g.out[r * g.ldout + feature] =
          silu_times(__bfloat162float(__float2bfloat16(v[e])), __bfloat162float(__float2bfloat16(up[e])));
    } else {
      g.out[r * g.ldout + feature] = __float2bfloat16(v[e]);
    }
  }
}

}  // namespace wedlm::cuda
