#pragma once
// mma.sync building blocks shared by the tensor-core GEMV/GEMM kernels (gemv.cu, gemm_pipe.cu):
// the m16n8k16 bf16 product, cp.async, and the epilogue that writes a warp's accumulators
// (16 output features x TILES 8-row tiles), plain or as silu(gate) * up.
#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/activation.cuh"
#include "backend/cuda/gemm.h"

namespace wedlm::cuda {

__device__ __forceinline__ void mma16816(float (&d)[4], unsigned a0, unsigned a1, unsigned a2, unsigned a3,
                                         unsigned b0, unsigned b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// A warp's mma accumulators cover 16 output features from o0 and TILES x 8 rows: c0, c1 are
// feature gi, rows 2t and 2t + 1 of each 8-row tile; c2, c3 feature gi + 8.
template <int TILES>
__device__ __forceinline__ float fragment_value(const GemmArgs& g, const float (&acc)[TILES][4], std::int64_t o0,
                                                int j, int e) {
  float v = acc[j][e];
  if (g.bias != nullptr) v += __bfloat162float(g.bias[o0 + (threadIdx.x % 32) / 4 + (e >= 2 ? 8 : 0)]);
  return v;
}

// The up half of a fused activation, rounded to bf16 as the unfused output is, for the warp that
// holds the matching gate features.
template <int TILES>
__device__ __forceinline__ void stash_fragments(const GemmArgs& g, const float (&acc)[TILES][4], std::int64_t o0,
                                                float (&up)[TILES][32][4]) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int j = 0; j < TILES; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) up[j][lane][e] = __bfloat162float(__float2bfloat16(fragment_value(g, acc, o0, j, e)));
  }
}

// Writes the accumulators to g.out: plain, or silu(gate) * up with `up` from stash_fragments.
template <int TILES>
__device__ __forceinline__ void store_fragments(const GemmArgs& g, const float (&acc)[TILES][4], std::int64_t o0,
                                                const float (*up)[32][4]) {
  const int lane = threadIdx.x % 32, gi = lane / 4, t = lane % 4;
#pragma unroll
  for (int j = 0; j < TILES; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int r = j * 8 + 2 * t + (e & 1);
      if (r >= g.rows) continue;
      const float v = fragment_value(g, acc, o0, j, e);
      bf16* dst = g.out + r * g.ldout + o0 + gi + (e >= 2 ? 8 : 0);
      *dst = up == nullptr ? __float2bfloat16(v) : silu_times(__bfloat162float(__float2bfloat16(v)), up[j][lane][e]);
    }
  }
}

__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(valid ? 16 : 0));
}

}  // namespace wedlm::cuda
