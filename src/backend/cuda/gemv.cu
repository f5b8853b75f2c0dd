#include "backend/cuda/gemv.h"

#include <cstdint>

#include "backend/cuda/cuda_check.h"

namespace wedlm::cuda {

namespace {

constexpr int kWarps = 8;
constexpr int kUnroll = 4;  // weight vectors in flight per lane

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

template <int R>
__global__ void __launch_bounds__(kWarps * 32) gemv_kernel(GemmArgs g) {
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

bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

}  // namespace

bool gemv_supported(const GemmArgs& g) {
  return g.rows >= 1 && g.rows <= kGemvMaxRows && g.k % 8 == 0 && g.ldx % 8 == 0 && g.k < (std::int64_t{1} << 30) &&
         aligned16(g.x) && aligned16(g.w);
}

void launch_gemv(const GemmArgs& g, cudaStream_t stream) {
  const unsigned blocks = static_cast<unsigned>((g.n + kWarps - 1) / kWarps);
  if (g.rows <= 1) {
    gemv_kernel<1><<<blocks, kWarps * 32, 0, stream>>>(g);
  } else if (g.rows <= 2) {
    gemv_kernel<2><<<blocks, kWarps * 32, 0, stream>>>(g);
  } else if (g.rows <= 4) {
    gemv_kernel<4><<<blocks, kWarps * 32, 0, stream>>>(g);
  } else {
    gemv_kernel<8><<<blocks, kWarps * 32, 0, stream>>>(g);
  }
  WEDLM_CUDA_CHECK_LAUNCH("gemv_kernel");
}

}  // namespace wedlm::cuda
