#include "backend/cuda/gemv.h"

#include <cstdint>

#include "backend/cuda/cuda_check.h"

namespace wedlm::cuda {

namespace {

constexpr int kWarps = 8;

__device__ __forceinline__ float dot8(uint4 a, uint4 b) {
  const __nv_bfloat162* x = reinterpret_cast<const __nv_bfloat162*>(&a);
  const __nv_bfloat162* y = reinterpret_cast<const __nv_bfloat162*>(&b);
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 fx = __bfloat1622float2(x[i]), fy = __bfloat1622float2(y[i]);
    s = fmaf(fx.x, fy.x, s);
    s = fmaf(fx.y, fy.y, s);
  }
  return s;
}

// UNROLL: weight vectors in flight per lane.
template <int R, int UNROLL>
__global__ void __launch_bounds__(kWarps * 32) gemv_kernel(GemmArgs g) {
  constexpr int kUnroll = UNROLL;
  const std::int64_t o = static_cast<std::int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (o >= g.n) return;  // whole warp
  const bf16* wr = g.w + o * g.k;
  const int rows = static_cast<int>(g.rows), k = static_cast<int>(g.k);
  float acc[R];
#pragma unroll
  for (int r = 0; r < R; ++r) acc[r] = 0.0f;
  for (int base = lane * 8; base < k; base += 32 * 8 * kUnroll) {
    uint4 wv[kUnroll];
    // All of this lane's weight loads first (streamed past the caches: each is read once).
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int kk = base + u * 32 * 8;
      wv[u] = kk < k ? __ldcs(reinterpret_cast<const uint4*>(wr + kk)) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int kk = base + u * 32 * 8;
      if (kk >= k) break;
#pragma unroll
      for (int r = 0; r < R; ++r) {
        if (r < rows) acc[r] += dot8(wv[u], __ldg(reinterpret_cast<const uint4*>(g.x + r * g.ldx + kk)));
      }
    }
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {
    float v = acc[r];
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    if (lane == 0 && r < rows) {
      if (g.bias != nullptr) v += __bfloat162float(g.bias[o]);
      g.out[r * g.ldout + o] = __float2bfloat16(v);
    }
  }
}

template <int UNROLL>
void launch_rows(const GemmArgs& g, cudaStream_t stream) {
  const unsigned blocks = static_cast<unsigned>((g.n + kWarps - 1) / kWarps);
  if (g.rows <= 1) {
    gemv_kernel<1, UNROLL><<<blocks, kWarps * 32, 0, stream>>>(g);
  } else if (g.rows <= 2) {
    gemv_kernel<2, UNROLL><<<blocks, kWarps * 32, 0, stream>>>(g);
  } else if (g.rows <= 4) {
    gemv_kernel<4, UNROLL><<<blocks, kWarps * 32, 0, stream>>>(g);
  } else {
    gemv_kernel<8, UNROLL><<<blocks, kWarps * 32, 0, stream>>>(g);
  }
  WEDLM_CUDA_CHECK_LAUNCH("gemv_kernel");
}

// Tensor-core variant for up to 32 rows: a block of 4 warps owns 16 output features; each warp
// takes every 4th 32-wide k step. mma.m16n8k16 gets W as A (16 features x 16 k) and x as B
// (16 k x 8 rows). A dot product does not care in which order k is summed, so each lane loads
// 8 consecutive k of its features and its x row with one 16-byte load each and feeds them to
// two mma's as the fragment layout's k pairs (2t, 2t+1 | 2t+8, 2t+9): W and x agree on the
// permutation, the sum is unchanged. x (<= 32 rows) is re-read from L1 per 16 features.
constexpr int kMmaWarps = 4;
constexpr int kMmaUnroll = 4;

__device__ __forceinline__ void mma16816(float (&d)[4], unsigned a0, unsigned a1, unsigned a2, unsigned a3,
                                         unsigned b0, unsigned b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

template <int TILES>
__global__ void __launch_bounds__(kMmaWarps * 32) gemv_mma_kernel(GemmArgs g) {
  __shared__ float partial[kMmaWarps - 1][TILES][32][4];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gi = lane / 4, t = lane % 4;
  const std::int64_t o0 = static_cast<std::int64_t>(blockIdx.x) * 16;
  const bf16* w0 = g.w + (o0 + gi) * g.k + 8 * t;
  const bf16* w1 = w0 + 8 * g.k;
  const int steps = static_cast<int>(g.k / 32), rows = static_cast<int>(g.rows);
  float acc[TILES][4];
#pragma unroll
  for (int j = 0; j < TILES; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
  for (int s0 = warp; s0 < steps; s0 += kMmaWarps * kMmaUnroll) {
    uint4 wa[kMmaUnroll], wb[kMmaUnroll];
#pragma unroll
    for (int u = 0; u < kMmaUnroll; ++u) {
      const int s = s0 + u * kMmaWarps;
      wa[u] = wb[u] = make_uint4(0, 0, 0, 0);
      if (s < steps) {
        wa[u] = __ldcs(reinterpret_cast<const uint4*>(w0 + s * 32));
        wb[u] = __ldcs(reinterpret_cast<const uint4*>(w1 + s * 32));
      }
    }
#pragma unroll
    for (int u = 0; u < kMmaUnroll; ++u) {
      const int s = s0 + u * kMmaWarps;
      if (s >= steps) break;
#pragma unroll
      for (int j = 0; j < TILES; ++j) {
        const int r = j * 8 + gi;
        const uint4 xv = r < rows ? __ldg(reinterpret_cast<const uint4*>(g.x + r * g.ldx + s * 32 + 8 * t))
                                  : make_uint4(0, 0, 0, 0);
        mma16816(acc[j], wa[u].x, wb[u].x, wa[u].y, wb[u].y, xv.x, xv.y);
        mma16816(acc[j], wa[u].z, wb[u].z, wa[u].w, wb[u].w, xv.z, xv.w);
      }
    }
  }
  if (warp > 0) {
#pragma unroll
    for (int j = 0; j < TILES; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) partial[warp - 1][j][lane][e] = acc[j][e];
    }
  }
  __syncthreads();
  if (warp != 0) return;
#pragma unroll
  for (int j = 0; j < TILES; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      float v = acc[j][e];
#pragma unroll
      for (int w = 0; w < kMmaWarps - 1; ++w) v += partial[w][j][lane][e];
      // c0, c1: feature gi, x rows 2t, 2t+1; c2, c3: feature gi + 8.
      const std::int64_t o = o0 + gi + (e >= 2 ? 8 : 0);
      const int r = j * 8 + 2 * t + (e & 1);
      if (r < rows) {
        if (g.bias != nullptr) v += __bfloat162float(g.bias[o]);
        g.out[r * g.ldout + o] = __float2bfloat16(v);
      }
    }
  }
}

void launch_mma(const GemmArgs& g, cudaStream_t stream) {
  const unsigned blocks = static_cast<unsigned>(g.n / 16);
  if (g.rows <= 8) {
    gemv_mma_kernel<1><<<blocks, kMmaWarps * 32, 0, stream>>>(g);
  } else if (g.rows <= 16) {
    gemv_mma_kernel<2><<<blocks, kMmaWarps * 32, 0, stream>>>(g);
  } else {
    gemv_mma_kernel<4><<<blocks, kMmaWarps * 32, 0, stream>>>(g);
  }
  WEDLM_CUDA_CHECK_LAUNCH("gemv_mma_kernel");
}

bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

}  // namespace

void launch_gemv(const GemmArgs& g, int variant, cudaStream_t stream) {
  if (variant == 0) {
    launch_rows<4>(g, stream);
  } else if (variant == 1) {
    launch_rows<8>(g, stream);
  } else {
    launch_mma(g, stream);
  }
}

const char* gemv_variant_name(int variant) { return variant == 0 ? "gemv4" : variant == 1 ? "gemv8" : "gemv_mma"; }

bool gemv_supported(const GemmArgs& g, int variant) {
  const bool common = g.rows >= 1 && g.k % 8 == 0 && g.ldx % 8 == 0 && g.k < (std::int64_t{1} << 30) &&
                      aligned16(g.x) && aligned16(g.w);
  if (variant < 2) return common && g.rows <= kGemvMaxRows;
  return common && g.rows <= kGemvMmaMaxRows && g.n % 16 == 0 && g.k % 32 == 0;
}


}  // namespace wedlm::cuda
