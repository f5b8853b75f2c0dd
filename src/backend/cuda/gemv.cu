#include "backend/cuda/gemv.h"

#include <cstdint>
#include <cstdlib>
#include <type_traits>

#include "backend/cuda/activation.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemm_bulk.h"
#include "backend/cuda/launch_tiers.h"
#include "backend/cuda/mma_sync.cuh"
#include "backend/cuda/pdl.h"
#include "backend/cuda/shared_staging.cuh"

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

// UNROLL: weight vectors per lane in one batch. Two batches are in flight: the next one is
// loaded while the current one is used, and the first is loaded before pdl_wait(), i.e. while
// the kernel that produces x is still finishing (weights depend on nothing).
// SILU: the block's first kWarps / 2 warps take gate features, the others the matching up
// features, and the block writes silu(gate) * up (GemmArgs::silu_mul).
template <int R, int UNROLL, bool SILU>
__global__ void __launch_bounds__(kWarps * 32) gemv_kernel(GemmArgs g) {
  pdl_launch_dependents();
  constexpr int kBatch = 32 * 8 * UNROLL;  // k elements one batch covers across the warp
  constexpr int kPairs = kWarps / 2;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const std::int64_t o =
      SILU ? (warp < kPairs ? 0 : g.n / 2) + static_cast<std::int64_t>(blockIdx.x) * kPairs + warp % kPairs
           : static_cast<std::int64_t>(blockIdx.x) * kWarps + warp;
  if (!SILU && o >= g.n) return;  // whole warp (SILU blocks are always full)
  const bf16* wr = g.w + o * g.k;
  const int rows = static_cast<int>(g.rows), k = static_cast<int>(g.k);
  uint4 next[UNROLL];
  auto load = [&](int base) {
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int kk = base + u * 32 * 8;
      // Streamed past the caches: each weight is read once.
      next[u] = kk < k ? __ldcs(reinterpret_cast<const uint4*>(wr + kk)) : make_uint4(0, 0, 0, 0);
    }
  };
  load(lane * 8);
  pdl_wait();
  float acc[R];
#pragma unroll
  for (int r = 0; r < R; ++r) acc[r] = 0.0f;
  for (int base = lane * 8; base < k; base += kBatch) {
    uint4 wv[UNROLL];
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) wv[u] = next[u];
    load(base + kBatch);
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int kk = base + u * 32 * 8;
      if (kk >= k) break;
#pragma unroll
      for (int r = 0; r < R; ++r) {
        if (r < rows) acc[r] += dot8(wv[u], __ldg(reinterpret_cast<const uint4*>(g.x + r * g.ldx + kk)));
      }
    }
  }
  __shared__ float gate_up[SILU ? kWarps : 1][R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    float v = acc[r];
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    if (lane == 0 && r < rows) {
      if (g.bias != nullptr) v += __bfloat162float(g.bias[o]);
      if constexpr (SILU) {
        gate_up[warp][r] = __bfloat162float(__float2bfloat16(v));  // rounded as the unfused output
      } else {
        g.out[r * g.ldout + o] = __float2bfloat16(v);
      }
    }
  }
  if constexpr (!SILU) {
    (void)gate_up;
  } else {
    __syncthreads();
    const int t = threadIdx.x, j = t % kPairs, r = t / kPairs;
    if (r < rows && r < R) {
      g.out[r * g.ldout + static_cast<std::int64_t>(blockIdx.x) * kPairs + j] =
          silu_times(gate_up[j][r], gate_up[kPairs + j][r]);
    }
  }
}

// Streaming variant: a grid that fits on the GPU at once, each warp owning `per_warp`
// consecutive output features (one contiguous run of weight rows), so that a warp's loads
// run on across feature boundaries (the next batch is in flight while a feature's sum is
// reduced and written) and no block is scheduled after the first wave. Needs k a multiple of
// 256 * UNROLL (a batch never straddles two features). SILU: units alternate gate j, up j.
// NORM_IN (GemmArgs::in_norm): x is normalized here, by every block, into shared memory.
constexpr int kNormInRows = 2;
constexpr int kNormInCols = 4096;
constexpr int kNormInVecs = kNormInCols / (kWarps * 32 * 8);  // 16-byte vectors per thread and row

template <int R>
__device__ __forceinline__ void normalize_input(const GemmArgs& g, bf16 (*xs)[kNormInCols]) {
  __shared__ float partial[R][kWarps];
  const int cols = static_cast<int>(g.k), warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  uint4 h[R][kNormInVecs];
  float sum[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    sum[r] = 0.0f;
    if (r >= g.rows) continue;
#pragma unroll
    for (int v = 0; v < kNormInVecs; ++v) {
      const int c = (threadIdx.x + v * kWarps * 32) * 8;
      if (c >= cols) continue;
      h[r][v] = *reinterpret_cast<const uint4*>(g.in_residual + r * g.in_residual_stride + c);
      if (g.in_delta != nullptr) {
        const uint4 d = *reinterpret_cast<const uint4*>(g.in_delta + r * g.in_delta_stride + c);
        bf16* hv = reinterpret_cast<bf16*>(&h[r][v]);
        const bf16* dv = reinterpret_cast<const bf16*>(&d);
#pragma unroll
        for (int j = 0; j < 8; ++j) hv[j] = __float2bfloat16(__bfloat162float(hv[j]) + __bfloat162float(dv[j]));
      }
      if (blockIdx.x == 0) {
        *reinterpret_cast<uint4*>(g.in_residual_out + r * g.in_residual_out_stride + c) = h[r][v];
      }
      const bf16* hv = reinterpret_cast<const bf16*>(&h[r][v]);
#pragma unroll
      for (int j = 0; j < 8; ++j) sum[r] += __bfloat162float(hv[j]) * __bfloat162float(hv[j]);
    }
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {
    for (int o = 16; o > 0; o >>= 1) sum[r] += __shfl_xor_sync(0xffffffffu, sum[r], o);
    if (lane == 0) partial[r][warp] = sum[r];
  }
  __syncthreads();
#pragma unroll
  for (int r = 0; r < R; ++r) {
    if (r >= g.rows) continue;
    float total = 0.0f;
    for (int w = 0; w < kWarps; ++w) total += partial[r][w];
    const float scale = rsqrtf(total / static_cast<float>(cols) + g.in_eps);
#pragma unroll
    for (int v = 0; v < kNormInVecs; ++v) {
      const int c = (threadIdx.x + v * kWarps * 32) * 8;
      if (c >= cols) continue;
      const bf16* hv = reinterpret_cast<const bf16*>(&h[r][v]);
      uint4 packed;
      bf16* xv = reinterpret_cast<bf16*>(&packed);
#pragma unroll
      for (int j = 0; j < 8; ++j) xv[j] = __float2bfloat16(__bfloat162float(hv[j]) * scale * g.in_norm[c + j]);
      *reinterpret_cast<uint4*>(&xs[r][c]) = packed;
    }
  }
  __syncthreads();
}

template <int R, int UNROLL, bool SILU, bool NORM_IN>
__global__ void __launch_bounds__(kWarps * 32) gemv_stream_kernel(GemmArgs g, int per_warp) {
  pdl_launch_dependents();
  constexpr int kBatch = 32 * 8 * UNROLL;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const std::int64_t first = (static_cast<std::int64_t>(blockIdx.x) * kWarps + warp) * per_warp;
  const std::int64_t left = g.n - first;  // units: SILU pairs count twice, n in all
  // A warp past the end has no units; it still waits (pdl.h: every block of a grid waits, so
  // that a grid's completion implies its predecessors').
  const int units = static_cast<int>(left <= 0 ? 0 : left < per_warp ? left : per_warp);
  const int per_unit = static_cast<int>(g.k / kBatch);
  const int total = units * per_unit;
  auto feature = [&](std::int64_t u) -> std::int64_t { return SILU ? ((u & 1) ? g.n / 2 : 0) + (u >> 1) : u; };
  int load_unit = 0, load_chunk = 0;
  const bf16* row = g.w + (units > 0 ? feature(first) * g.k : 0) + lane * 8;
  uint4 next[UNROLL];
  auto load = [&]() {
    const bf16* p = row + load_chunk * kBatch;
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) next[u] = __ldcs(reinterpret_cast<const uint4*>(p + u * 32 * 8));
    if (++load_chunk == per_unit) {
      load_chunk = 0;
      ++load_unit;
      row = g.w + feature(first + load_unit) * g.k + lane * 8;
    }
  };
  if (total > 0) load();
  pdl_wait();
  __shared__ __align__(16) bf16 xs[NORM_IN ? R : 1][NORM_IN ? kNormInCols : 8];
  const bf16* x = g.x;
  std::int64_t ldx = g.ldx;
  if constexpr (NORM_IN) {
    normalize_input<R>(g, xs);
    x = &xs[0][0];
    ldx = kNormInCols;
  }
  const int rows = static_cast<int>(g.rows);
  float acc[R], gate[R];
#pragma unroll
  for (int r = 0; r < R; ++r) acc[r] = gate[r] = 0.0f;
  int unit = 0, chunk = 0;
  for (int b = 0; b < total; ++b) {
    uint4 wv[UNROLL];
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) wv[u] = next[u];
    if (b + 1 < total) load();
    const bf16* xk = x + chunk * kBatch + lane * 8;
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        if (r >= rows) continue;
        const uint4* xv = reinterpret_cast<const uint4*>(xk + r * ldx + u * 32 * 8);
        acc[r] += dot8(wv[u], NORM_IN ? *xv : __ldg(xv));
      }
    }
    if (++chunk < per_unit) continue;
    chunk = 0;
    const std::int64_t o = feature(first + unit);
#pragma unroll
    for (int r = 0; r < R; ++r) {
      float v = acc[r];
      acc[r] = 0.0f;
      for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
      if (r >= rows) continue;
      if (g.bias != nullptr) v += __bfloat162float(g.bias[o]);
      if constexpr (SILU) {
        const float rounded = __bfloat162float(__float2bfloat16(v));  // as the unfused output
        if ((unit & 1) == 0) {
          gate[r] = rounded;
        } else if (lane == r) {
          g.out[r * g.ldout + (first + unit) / 2] = silu_times(gate[r], rounded);
        }
      } else if (lane == r) {
        g.out[r * g.ldout + o] = __float2bfloat16(v);
      }
    }
    ++unit;
  }
}

int sm_count() {
  static int count = [] {
    int device = 0, c = 0;
    WEDLM_CUDA_CHECK(cudaGetDevice(&device));
    WEDLM_CUDA_CHECK(cudaDeviceGetAttribute(&c, cudaDevAttrMultiProcessorCount, device));
    return c;
  }();
  return count;
}

template <int R, int UNROLL, bool SILU, bool NORM_IN = false>
void launch_stream_rows(const GemmArgs& g, cudaStream_t stream) {
  auto* kernel = gemv_stream_kernel<R, UNROLL, SILU, NORM_IN>;
  static const int resident = [&] {  // blocks of this instantiation an SM holds at once
    int b = 0;
    WEDLM_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&b, kernel, kWarps * 32, 0));
    return b > 0 ? b : 1;
  }();
  const std::int64_t slots = static_cast<std::int64_t>(sm_count()) * resident * kWarps;
  std::int64_t per_warp = (g.n + slots - 1) / slots;
  if (SILU && per_warp % 2 != 0) ++per_warp;  // a warp owns whole gate/up pairs
  const std::int64_t warps = (g.n + per_warp - 1) / per_warp;
  const unsigned blocks = static_cast<unsigned>((warps + kWarps - 1) / kWarps);
  launch(kernel, blocks, kWarps * 32, 0, stream, g, static_cast<int>(per_warp));
}

template <int UNROLL>
void launch_stream(const GemmArgs& g, cudaStream_t stream) {
  by_flag(g.silu_mul, [&](auto silu) {
    constexpr bool kSilu = decltype(silu)::value;
    if (g.in_norm != nullptr) {  // rows <= kNormInRows
      by_rows<1, 2>(g.rows, [&](auto r) { launch_stream_rows<decltype(r)::value, UNROLL, kSilu, true>(g, stream); });
    } else {
      by_rows<1, 2, 4, 8>(g.rows, [&](auto r) { launch_stream_rows<decltype(r)::value, UNROLL, kSilu>(g, stream); });
    }
  });
}

template <int UNROLL>
void launch_rows(const GemmArgs& g, cudaStream_t stream) {
  const unsigned blocks = static_cast<unsigned>((g.n + kWarps - 1) / kWarps);
  by_flag(g.silu_mul, [&](auto silu) {
    by_rows<1, 2, 4, 8>(g.rows, [&](auto r) {
      launch(gemv_kernel<decltype(r)::value, UNROLL, decltype(silu)::value>, blocks, kWarps * 32, 0, stream, g);
    });
  });
}

// Tensor-core variants for up to 32 rows: a block of 4 warps; warps form 4 / KW groups of 16
// output features, and the KW warps of a group take every KW-th 32-wide k step (their sums meet
// in shared memory). KW = 4 (16 features a block) keeps many blocks for narrow outputs; KW = 1
// (64 features a block) reads x from L2 a quarter as often, which matters at 32 rows, where x is
// 256 KB per pass. mma.m16n8k16 gets W as A (16 features x 16 k) and x as B (16 k x 8 rows).
// A dot product does not care in which order k is summed, so each lane loads 8 consecutive k of
// its features and its x row with one 16-byte load each and feeds them to two mma's as the
// fragment layout's k pairs (2t, 2t+1 | 2t+8, 2t+9): W and x agree on the permutation.
constexpr int kMmaWarps = 4;
constexpr int kMmaUnroll = 4;

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

// SILU: the first half of the groups take gate features, the second half the matching up
// features, and the block writes silu(gate) * up (GemmArgs::silu_mul).
template <int TILES, int KW, bool SILU>
__global__ void __launch_bounds__(kMmaWarps * 32) gemv_mma_kernel(GemmArgs g) {
  pdl_launch_dependents();
  constexpr int kGroups = kMmaWarps / KW;
  constexpr int kHalf = kGroups / 2;
  static_assert(!SILU || kGroups >= 2, "the activation needs gate and up groups in one block");
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gi = lane / 4, t = lane % 4;
  const int group = warp / KW, kw = warp % KW;
  const bool is_up = SILU && group >= kHalf;
  const std::int64_t o0 =
      SILU ? (is_up ? g.n / 2 : 0) + (static_cast<std::int64_t>(blockIdx.x) * kHalf + group % kHalf) * 16
           : (static_cast<std::int64_t>(blockIdx.x) * kGroups + group) * 16;
  const bf16* w0 = g.w + (o0 + gi) * g.k + 8 * t;
  const bf16* w1 = w0 + 8 * g.k;
  const int steps = static_cast<int>(g.k / 32), rows = static_cast<int>(g.rows);
  uint4 na[kMmaUnroll], nb[kMmaUnroll];
  auto load = [&](int s0) {
#pragma unroll
    for (int u = 0; u < kMmaUnroll; ++u) {
      const int s = s0 + u * KW;
      na[u] = nb[u] = make_uint4(0, 0, 0, 0);
      if (s < steps) {
        na[u] = __ldcs(reinterpret_cast<const uint4*>(w0 + s * 32));
        nb[u] = __ldcs(reinterpret_cast<const uint4*>(w1 + s * 32));
      }
    }
  };
  load(kw);
  pdl_wait();
  float acc[TILES][4];
#pragma unroll
  for (int j = 0; j < TILES; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
  for (int s0 = kw; s0 < steps; s0 += KW * kMmaUnroll) {
    uint4 wa[kMmaUnroll], wb[kMmaUnroll];
#pragma unroll
    for (int u = 0; u < kMmaUnroll; ++u) {
      wa[u] = na[u];
      wb[u] = nb[u];
    }
    load(s0 + KW * kMmaUnroll);
#pragma unroll
    for (int u = 0; u < kMmaUnroll; ++u) {
      const int s = s0 + u * KW;
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
  if constexpr (KW > 1) {
    __shared__ float partial[kMmaWarps][TILES][32][4];
    if (kw > 0) {
#pragma unroll
      for (int j = 0; j < TILES; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) partial[warp][j][lane][e] = acc[j][e];
      }
    }
    __syncthreads();
    if (kw == 0) {
#pragma unroll
      for (int j = 0; j < TILES; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
#pragma unroll
          for (int w = 1; w < KW; ++w) acc[j][e] += partial[warp + w][j][lane][e];
        }
      }
    }
  }
  // The k = 0 warp of each group holds the group's sums.
  if constexpr (SILU) {
    __shared__ float up[kHalf][TILES][32][4];
    if (kw == 0 && is_up) stash_fragments<TILES>(g, acc, o0, up[group - kHalf]);
    __syncthreads();
    if (kw != 0 || is_up) return;
    store_fragments<TILES>(g, acc, o0, up[group]);
  } else {
    if (kw != 0) return;
    store_fragments<TILES>(g, acc, o0, nullptr);
  }
}

// WeDLM steps (9..32 rows): x is staged in shared memory a 128-wide k chunk at a time (three
// chunks in flight by cp.async) and shared by the block's 4 warps; each warp streams its own 16
// weight rows into registers one chunk ahead and multiplies them by the staged x on tensor
// cores (the k permutation of gemv_mma_kernel). A block owns 64 features, so x is read from L2
// once per 64 features (the tensor-core GEMV above re-reads it per 16, from L2 once it no longer
// fits L1). SILU: warps 0-1 take gate features, 2-3 the matching up features.
constexpr int kXChunk = 128;
constexpr int kXStages = 3;
constexpr int kXLd = kXChunk + 32;  // row stride 320 B: a quarter warp's 16-byte loads hit distinct banks

template <int TILES, bool SILU>
__global__ void __launch_bounds__(kMmaWarps * 32) gemm_x_kernel(GemmArgs g) {
  pdl_launch_dependents();
  constexpr int kRows = TILES * 8, kSteps = kXChunk / 32;
  __shared__ __align__(16) bf16 xs[kXStages][kRows][kXLd];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gi = lane / 4, t = lane % 4;
  const std::int64_t o0 = SILU ? (warp >= 2 ? g.n / 2 : 0) + (static_cast<std::int64_t>(blockIdx.x) * 2 + warp % 2) * 16
                               : (static_cast<std::int64_t>(blockIdx.x) * kMmaWarps + warp) * 16;
  const bf16* w0 = g.w + (o0 + gi) * g.k + 8 * t;
  const bf16* w1 = w0 + 8 * g.k;
  const int chunks = static_cast<int>(g.k / kXChunk), rows = static_cast<int>(g.rows);
  uint4 na[kSteps], nb[kSteps];
  auto load_w = [&](int c) {
#pragma unroll
    for (int s = 0; s < kSteps; ++s) {
      na[s] = nb[s] = make_uint4(0, 0, 0, 0);
      if (c < chunks) {
        na[s] = __ldcs(reinterpret_cast<const uint4*>(w0 + c * kXChunk + s * 32));
        nb[s] = __ldcs(reinterpret_cast<const uint4*>(w1 + c * kXChunk + s * 32));
      }
    }
  };
  auto stage_x = [&](int c) {
    if (c < chunks) {
      for (int i = threadIdx.x; i < kRows * (kXChunk / 8); i += kMmaWarps * 32) {
        const int r = i / (kXChunk / 8), col = (i % (kXChunk / 8)) * 8;
        const bool valid = r < rows;
        cp_async16(&xs[c % kXStages][r][col], valid ? g.x + r * g.ldx + c * kXChunk + col : g.x, valid);
      }
    }
    asm volatile("cp.async.commit_group;\n" ::);  // empty groups keep the count uniform
  };
  load_w(0);
  pdl_wait();
#pragma unroll
  for (int c = 0; c < kXStages - 1; ++c) stage_x(c);
  float acc[TILES][4];
#pragma unroll
  for (int j = 0; j < TILES; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
  for (int c = 0; c < chunks; ++c) {
    uint4 wa[kSteps], wb[kSteps];
#pragma unroll
    for (int s = 0; s < kSteps; ++s) {
      wa[s] = na[s];
      wb[s] = nb[s];
    }
    load_w(c + 1);
    stage_x(c + kXStages - 1);  // into the stage read two passes ago (released by the barrier below)
    asm volatile("cp.async.wait_group %0;\n" ::"n"(kXStages - 1));
    __syncthreads();  // chunk c of x is in shared memory for every warp
#pragma unroll
    for (int s = 0; s < kSteps; ++s) {
#pragma unroll
      for (int j = 0; j < TILES; ++j) {
        const uint4 xv = *reinterpret_cast<const uint4*>(&xs[c % kXStages][j * 8 + gi][s * 32 + 8 * t]);
        mma16816(acc[j], wa[s].x, wb[s].x, wa[s].y, wb[s].y, xv.x, xv.y);
        mma16816(acc[j], wa[s].z, wb[s].z, wa[s].w, wb[s].w, xv.z, xv.w);
      }
    }
    __syncthreads();  // every warp is done with this stage before it is refilled
  }
  if constexpr (SILU) {
    __shared__ float up[2][TILES][32][4];
    if (warp >= 2) stash_fragments<TILES>(g, acc, o0, up[warp - 2]);
    __syncthreads();
    if (warp >= 2) return;
    store_fragments<TILES>(g, acc, o0, up[warp]);
  } else {
    store_fragments<TILES>(g, acc, o0, nullptr);
  }
}

void launch_gemm_x(const GemmArgs& g, cudaStream_t stream) {
  const unsigned blocks = static_cast<unsigned>(g.n / 64);
  by_flag(g.silu_mul, [&](auto silu) {
    by_rows<8, 16, 24, 32>(g.rows, [&](auto r) {
      launch(gemm_x_kernel<decltype(r)::value / 8, decltype(silu)::value>, blocks, kMmaWarps * 32, 0, stream, g);
    });
  });
}

// Output features one block of variant `variant` (>= 2) covers.
int mma_features(int variant) { return variant == 2 ? 16 : variant == 3 ? 32 : 64; }

template <int KW>
void launch_mma(const GemmArgs& g, cudaStream_t stream) {
  const unsigned blocks = static_cast<unsigned>(g.n / (16 * (kMmaWarps / KW)));
  by_flag(g.silu_mul, [&](auto silu) {
    // A one-group block (KW = 4) cannot pair gate and up; gemv_supported never sends it silu_mul.
    constexpr bool kSilu = decltype(silu)::value && KW < kMmaWarps;
    by_rows<8, 16, 32>(g.rows, [&](auto r) {
      launch(gemv_mma_kernel<decltype(r)::value / 8, KW, kSilu>, blocks, kMmaWarps * 32, 0, stream, g);
    });
  });
}

bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

bool norm_in_supported(const GemmArgs& g, int variant) {
  if (g.in_norm == nullptr) return true;
  auto rows16 = [](const void* p, std::int64_t stride) { return aligned16(p) && stride % 8 == 0; };
  return (variant == 5 || variant == 6) && g.rows <= kNormInRows && g.k <= kNormInCols &&
         rows16(g.in_residual, g.in_residual_stride) && (g.in_delta == nullptr || rows16(g.in_delta, g.in_delta_stride)) &&
         rows16(g.in_residual_out, g.in_residual_out_stride);
}

}  // namespace

namespace {

// A stand-in for the light kernel (a norm, the attention combine, silu) that precedes a GEMM in a
// forward: every multiprocessor busy for ~3 us with little memory traffic.
__global__ void tuning_spacer_kernel() {
  pdl_launch_dependents();
  pdl_wait();
  unsigned long long start = 0, now = 0;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
  do {
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  } while (now - start < 3000);
}

}  // namespace

void launch_tuning_spacer(cudaStream_t stream) {
  launch(tuning_spacer_kernel, static_cast<unsigned>(sm_count()), 128, 0, stream);
}

void launch_gemv(const GemmArgs& g, int variant, cudaStream_t stream) {
  if (variant == 0) {
    launch_rows<4>(g, stream);
  } else if (variant == 1) {
    launch_rows<8>(g, stream);
  } else if (variant == 2) {
    launch_mma<4>(g, stream);
  } else if (variant == 3) {
    launch_mma<2>(g, stream);
  } else if (variant == 4) {
    launch_mma<1>(g, stream);
  } else if (variant == 5) {
    launch_stream<4>(g, stream);
  } else if (variant == 6) {
    launch_stream<8>(g, stream);
  } else if (variant == 7) {
    launch_gemm_x(g, stream);
  } else {
    launch_gemm_bulk(g, variant, stream);
  }
}

const char* gemv_variant_name(int variant) {
  static const char* const names[kGemvVariants] = {"gemv4", "gemv8", "gemv_mma16", "gemv_mma32", "gemv_mma64",
                                                   "gemv_stream4", "gemv_stream8", "gemm_x",
                                                   "gemm_tma", "gemm_tma_x2", "gemm_tma_x4", "gemm_tma_k2x2",
                                                   "gemm_wgmma6_x2", "gemm_wgmma4_x2"};
  return variant >= 0 && variant < kGemvVariants ? names[variant] : "?";
}

bool gemv_timed(int variant) {
  static const bool tma = [] {
    const char* env = std::getenv("WEDLM_CUDA_TMA_GEMM");
    return env == nullptr || *env != '0';
  }();
  return variant < kFirstBulkVariant || tma;
}

bool gemv_supported(const GemmArgs& g, int variant) {
  if (variant < 0 || variant >= kGemvVariants || !norm_in_supported(g, variant)) return false;
  const bool common = g.rows >= 1 && g.k % 8 == 0 && g.ldx % 8 == 0 && g.k < (std::int64_t{1} << 30) &&
                      aligned16(g.x) && aligned16(g.w);
  if (variant < 2) return common && g.rows <= kGemvMaxRows && (!g.silu_mul || g.n % kWarps == 0);
  if (variant == 7) {
    return common && g.rows <= kGemvMmaMaxRows && g.n % 64 == 0 && g.k % kXChunk == 0 && g.ldx % 8 == 0;
  }
  if (variant >= kFirstBulkVariant) return common && g.rows <= kGemvMmaMaxRows && gemm_bulk_supported(g, variant);
  if (variant >= 5) {
    const std::int64_t batch = 32 * 8 * (variant == 5 ? 4 : 8);
    return common && g.rows <= kGemvMaxRows && g.k % batch == 0 && (!g.silu_mul || g.n % 2 == 0);
  }
  // With the activation fused, a block needs gate and up groups: not the one-group variant 2.
  return common && g.rows <= kGemvMmaMaxRows && g.n % mma_features(variant) == 0 && g.k % 32 == 0 &&
         !(g.silu_mul && variant == 2);
}


}  // namespace wedlm::cuda
