// Row-wise and elementwise kernels: small next to the GEMMs, so they favour plain, obviously
// correct code (fp32 arithmetic on bf16 storage) over vector tricks.
#include <cuda_fp16.h>

#include <cmath>

#include "backend/cuda/activation.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/pdl.h"

namespace wedlm::cuda {

namespace {

constexpr int kRowThreads = 256;

__device__ float block_sum(float v, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = 0.0f;
  for (int w = 0; w < static_cast<int>(blockDim.x / 32); ++w) total += scratch[w];
  __syncthreads();  // scratch is reused by the next reduction
  return total;
}

__global__ void embed_kernel(const bf16* table, const std::int32_t* ids, Mat out) {
  pdl_launch_dependents();
  pdl_wait();
  const std::int64_t r = blockIdx.x;
  const bf16* src = table + static_cast<std::int64_t>(ids[r]) * out.cols;
  bf16* dst = out.data + r * out.stride;
  for (std::int64_t i = threadIdx.x; i < out.cols; i += blockDim.x) dst[i] = src[i];
}

// Row norms with the row held in registers: every load of a row is issued before any store
// (the scalar loops below interleave stores with loads the compiler cannot hoist past them, so
// a 4096-wide row cost one L2 round trip per 256 elements: ~12 us for what is ~2 us of
// latency). The gains are read before pdl_wait(): they depend on no earlier kernel.
constexpr int kNormVecs = 4;  // 16-byte vectors per thread: rows up to 8192 wide

bool norm_vectorizable(const Mat& m) {
  return m.cols % 8 == 0 && m.stride % 8 == 0 && reinterpret_cast<std::uintptr_t>(m.data) % 16 == 0 &&
         m.cols <= static_cast<std::int64_t>(kRowThreads) * 8 * kNormVecs;
}

// residual_out = residual (+ delta when ADD); out = rmsnorm(residual_out) * w. residual_out.data
// null: the residual is not stored (plain rmsnorm); it may equal residual.data (in place).
template <bool ADD>
__global__ void __launch_bounds__(kRowThreads) norm_rows_kernel(Mat residual, Mat delta, Mat residual_out,
                                                                const float* w, float eps, Mat out) {
  pdl_launch_dependents();
  __shared__ float scratch[32];
  const int cols = static_cast<int>(residual.cols);
  float4 gain[kNormVecs][2];
#pragma unroll
  for (int v = 0; v < kNormVecs; ++v) {
    const int c = (threadIdx.x + v * kRowThreads) * 8;
    if (c < cols) {
      gain[v][0] = *reinterpret_cast<const float4*>(w + c);
      gain[v][1] = *reinterpret_cast<const float4*>(w + c + 4);
    }
  }
  pdl_wait();
  const std::int64_t r = blockIdx.x;
  bf16* res = residual.data + r * residual.stride;
  uint4 h[kNormVecs], dv[kNormVecs];
#pragma unroll
  for (int v = 0; v < kNormVecs; ++v) {
    const int c = (threadIdx.x + v * kRowThreads) * 8;
    if (c < cols) {
      h[v] = *reinterpret_cast<const uint4*>(res + c);
      if (ADD) dv[v] = *reinterpret_cast<const uint4*>(delta.data + r * delta.stride + c);
    }
  }
  float sum = 0.0f;
#pragma unroll
  for (int v = 0; v < kNormVecs; ++v) {
    const int c = (threadIdx.x + v * kRowThreads) * 8;
    if (c >= cols) continue;
    bf16* hv = reinterpret_cast<bf16*>(&h[v]);
    if (ADD) {
      const bf16* d = reinterpret_cast<const bf16*>(&dv[v]);
#pragma unroll
      for (int j = 0; j < 8; ++j) hv[j] = __float2bfloat16(__bfloat162float(hv[j]) + __bfloat162float(d[j]));
    }
    if (residual_out.data != nullptr) {  // the residual stream is stored in bf16
      *reinterpret_cast<uint4*>(residual_out.data + r * residual_out.stride + c) = h[v];
    }
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const float f = __bfloat162float(hv[j]);
      sum += f * f;
    }
  }
  const float scale = rsqrtf(block_sum(sum, scratch) / static_cast<float>(cols) + eps);
  bf16* o = out.data + r * out.stride;
#pragma unroll
  for (int v = 0; v < kNormVecs; ++v) {
    const int c = (threadIdx.x + v * kRowThreads) * 8;
    if (c >= cols) continue;
    const bf16* hv = reinterpret_cast<const bf16*>(&h[v]);
    const float g[8] = {gain[v][0].x, gain[v][0].y, gain[v][0].z, gain[v][0].w,
                        gain[v][1].x, gain[v][1].y, gain[v][1].z, gain[v][1].w};
    uint4 packed;
    bf16* ov = reinterpret_cast<bf16*>(&packed);
#pragma unroll
    for (int j = 0; j < 8; ++j) ov[j] = __float2bfloat16(__bfloat162float(hv[j]) * scale * g[j]);
    *reinterpret_cast<uint4*>(o + c) = packed;
  }
}

__global__ void rmsnorm_kernel(Mat x, const float* w, float eps, Mat out) {
  pdl_launch_dependents();
  pdl_wait();
  __shared__ float scratch[32];
  const std::int64_t r = blockIdx.x;
  const bf16* in = x.data + r * x.stride;
  float sum = 0.0f;
  for (std::int64_t i = threadIdx.x; i < x.cols; i += blockDim.x) {
    const float v = __bfloat162float(in[i]);
    sum += v * v;
  }
  const float scale = rsqrtf(block_sum(sum, scratch) / static_cast<float>(x.cols) + eps);
  bf16* o = out.data + r * out.stride;
  for (std::int64_t i = threadIdx.x; i < x.cols; i += blockDim.x) {
    o[i] = __float2bfloat16(__bfloat162float(in[i]) * scale * w[i]);
  }
}

__global__ void add_rmsnorm_kernel(Mat residual, Mat delta, const float* w, float eps, Mat out) {
  pdl_launch_dependents();
  pdl_wait();
  __shared__ float scratch[32];
  const std::int64_t r = blockIdx.x;
  bf16* res = residual.data + r * residual.stride;
  const bf16* d = delta.data + r * delta.stride;
  float sum = 0.0f;
  for (std::int64_t i = threadIdx.x; i < residual.cols; i += blockDim.x) {
    const bf16 v = __float2bfloat16(__bfloat162float(res[i]) + __bfloat162float(d[i]));
    res[i] = v;  // each thread re-reads only its own elements below
    const float f = __bfloat162float(v);
    sum += f * f;
  }
  const float scale = rsqrtf(block_sum(sum, scratch) / static_cast<float>(residual.cols) + eps);
  bf16* o = out.data + r * out.stride;
  for (std::int64_t i = threadIdx.x; i < residual.cols; i += blockDim.x) {
    o[i] = __float2bfloat16(__bfloat162float(res[i]) * scale * w[i]);
  }
}

__global__ void add_kernel(Mat residual, Mat delta) {
  pdl_launch_dependents();
  pdl_wait();
  const std::int64_t r = blockIdx.x;
  bf16* res = residual.data + r * residual.stride;
  const bf16* d = delta.data + r * delta.stride;
  for (std::int64_t i = threadIdx.x; i < residual.cols; i += blockDim.x) {
    res[i] = __float2bfloat16(__bfloat162float(res[i]) + __bfloat162float(d[i]));
  }
}

__global__ void silu_mul_kernel(Mat gate_up, Mat out) {
  pdl_launch_dependents();
  pdl_wait();
  const std::int64_t r = blockIdx.y;
  const bf16* g = gate_up.data + r * gate_up.stride;
  const bf16* u = g + out.cols;
  bf16* o = out.data + r * out.stride;
  for (std::int64_t i = blockIdx.x * blockDim.x + threadIdx.x; i < out.cols; i += gridDim.x * blockDim.x) {
    o[i] = silu_times(__bfloat162float(g[i]), __bfloat162float(u[i]));
  }
}

__global__ void gather_rows_kernel(Mat x, const std::int32_t* rows, Mat out) {
  pdl_launch_dependents();
  pdl_wait();
  const std::int64_t i = blockIdx.x;
  const bf16* src = x.data + static_cast<std::int64_t>(rows[i]) * x.stride;
  bf16* dst = out.data + i * out.stride;
  for (std::int64_t c = threadIdx.x; c < out.cols; c += blockDim.x) dst[c] = src[c];
}

__global__ void to_float_kernel(Mat x, float* out) {
  pdl_launch_dependents();
  pdl_wait();
  const std::int64_t r = blockIdx.y;
  for (std::int64_t c = blockIdx.x * blockDim.x + threadIdx.x; c < x.cols; c += gridDim.x * blockDim.x) {
    out[r * x.cols + c] = __bfloat162float(x.data[r * x.stride + c]);
  }
}

__global__ void f32_to_bf16_kernel(const float* in, std::int64_t n, bf16* out) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    out[i] = __float2bfloat16_rn(in[i]);
  }
}

__global__ void f16_to_bf16_kernel(const std::uint16_t* in, std::int64_t n, bf16* out) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    __half h;
    *reinterpret_cast<std::uint16_t*>(&h) = in[i];
    out[i] = __float2bfloat16_rn(__half2float(h));
  }
}

// One warp per head of one row: q heads, k heads, then (when scattering to the cache) v heads.
// Lane l handles rotation pairs (i, i + half) for i = l, l + 32, ...; the RMS statistic is a
// warp reduction over the whole head.
__global__ void qk_norm_rope_kernel(QkNormRopeArgs a) {
  pdl_launch_dependents();
  pdl_wait();
  const bool scatter = a.k_cache != nullptr;
  const int heads = a.num_heads + a.num_kv_heads * (scatter ? 2 : 1);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int h = blockIdx.y * (blockDim.x / 32) + warp;
  if (h >= heads) return;
  const std::int64_t r = blockIdx.x;
  bf16* x = a.qkv.data + r * a.qkv.stride + static_cast<std::int64_t>(h) * a.head_dim;
  bf16* cached = nullptr;  // this head's vector in the cache, or null
  if (scatter && h >= a.num_heads) {
    const std::int64_t slot = a.row_slot[r];
    if (slot >= 0) {
      const int kv_head = (h - a.num_heads) % a.num_kv_heads;
      const std::int64_t block = slot / a.block_size, offset = slot % a.block_size;
      const std::int64_t at = ((block * a.num_kv_heads + kv_head) * a.block_size + offset) * a.head_dim;
      cached = (h < a.num_heads + a.num_kv_heads ? a.k_cache : a.v_cache) + at;
    }
  }
  // Lane l holds rotation pairs (i, i + half) for i = l, l + 32, ... (head_dim <= 256: at most
  // 4 pairs); all loads are issued before any store.
  constexpr int kMaxPairs = 4;
  const int half = a.head_dim / 2;
  float x1[kMaxPairs], x2[kMaxPairs];
#pragma unroll
  for (int j = 0; j < kMaxPairs; ++j) {
    const int i = lane + 32 * j;
    if (i < half) {
      x1[j] = __bfloat162float(x[i]);
      x2[j] = __bfloat162float(x[i + half]);
    }
  }
  if (h >= a.num_heads + a.num_kv_heads) {  // a v head: copied as is
    if (cached != nullptr) {
#pragma unroll
      for (int j = 0; j < kMaxPairs; ++j) {
        const int i = lane + 32 * j;
        if (i < half) {
          cached[i] = __float2bfloat16(x1[j]);
          cached[i + half] = __float2bfloat16(x2[j]);
        }
      }
    }
    return;
  }
  const float* gain = h < a.num_heads ? a.q_norm : a.k_norm;
  float scale = 1.0f;
  if (gain != nullptr) {
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < kMaxPairs; ++j) {
      if (lane + 32 * j < half) sum += x1[j] * x1[j] + x2[j] * x2[j];
    }
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    scale = rsqrtf(sum / static_cast<float>(a.head_dim) + a.eps);
  }
  const float position = static_cast<float>(a.positions[r]);
#pragma unroll
  for (int j = 0; j < kMaxPairs; ++j) {
    const int i = lane + 32 * j;
    if (i >= half) continue;
    float v1 = x1[j], v2 = x2[j];
    if (gain != nullptr) {
      // Rounded to bf16 after the norm, as the reference model stores the normed head.
      v1 = __bfloat162float(__float2bfloat16(v1 * scale * gain[i]));
      v2 = __bfloat162float(__float2bfloat16(v2 * scale * gain[i + half]));
    }
    const float angle = position * a.inv_freq[i];
    float s, c;
    sincosf(angle, &s, &c);
    const bf16 y1 = __float2bfloat16(v1 * c - v2 * s), y2 = __float2bfloat16(v2 * c + v1 * s);
    x[i] = y1;
    x[i + half] = y2;
    if (cached != nullptr) {
      cached[i] = y1;
      cached[i + half] = y2;
    }
  }
}

unsigned blocks_for(std::int64_t n, int threads) {
  const std::int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b < 65535 ? (b > 0 ? b : 1) : 65535);
}

}  // namespace

void launch_embed(const bf16* table, const std::int32_t* ids, Mat out, cudaStream_t stream) {
  if (out.rows == 0) return;
  // A plain launch: it starts only once all earlier work is done, and every later kernel of the
  // chunk starts after it, so they may read what earlier chunks wrote before their pdl_wait().
  embed_kernel<<<static_cast<unsigned>(out.rows), kRowThreads, 0, stream>>>(table, ids, out);
  WEDLM_CUDA_CHECK_LAUNCH("embed_kernel");
}

void launch_rmsnorm(Mat x, const float* w, float eps, Mat out, cudaStream_t stream) {
  if (x.rows == 0) return;
  if (norm_vectorizable(x) && norm_vectorizable(out) && reinterpret_cast<std::uintptr_t>(w) % 16 == 0) {
    launch(norm_rows_kernel<false>, static_cast<unsigned>(x.rows), kRowThreads, 0, stream, x, x, Mat{}, w, eps, out);
    return;
  }
  launch(rmsnorm_kernel, static_cast<unsigned>(x.rows), kRowThreads, 0, stream, x, w, eps, out);
}

void launch_add_rmsnorm_into(Mat residual, Mat delta, Mat residual_out, const float* w, float eps, Mat out,
                             cudaStream_t stream) {
  if (residual.rows == 0) return;
  const bool add = delta.rows > 0;
  if (norm_vectorizable(residual) && (!add || norm_vectorizable(delta)) && norm_vectorizable(residual_out) &&
      norm_vectorizable(out) && reinterpret_cast<std::uintptr_t>(w) % 16 == 0) {
    if (add) {
      launch(norm_rows_kernel<true>, static_cast<unsigned>(residual.rows), kRowThreads, 0, stream, residual, delta,
             residual_out, w, eps, out);
    } else {
      launch(norm_rows_kernel<false>, static_cast<unsigned>(residual.rows), kRowThreads, 0, stream, residual, residual,
             residual_out, w, eps, out);
    }
    return;
  }
  if (residual_out.data != residual.data) {
    WEDLM_CUDA_CHECK(cudaMemcpy2DAsync(residual_out.data, static_cast<std::size_t>(residual_out.stride) * sizeof(bf16),
                                       residual.data, static_cast<std::size_t>(residual.stride) * sizeof(bf16),
                                       static_cast<std::size_t>(residual.cols) * sizeof(bf16),
                                       static_cast<std::size_t>(residual.rows), cudaMemcpyDeviceToDevice, stream));
  }
  if (add) {
    launch(add_rmsnorm_kernel, static_cast<unsigned>(residual.rows), kRowThreads, 0, stream, residual_out, delta, w, eps,
           out);
  } else {
    launch(rmsnorm_kernel, static_cast<unsigned>(residual.rows), kRowThreads, 0, stream, residual_out, w, eps, out);
  }
}

void launch_add(Mat residual, Mat delta, cudaStream_t stream) {
  if (residual.rows == 0) return;
  launch(add_kernel, static_cast<unsigned>(residual.rows), kRowThreads, 0, stream, residual, delta);
}

void launch_silu_mul(Mat gate_up, Mat out, cudaStream_t stream) {
  if (out.rows == 0) return;
  const dim3 grid(blocks_for(out.cols, kRowThreads), static_cast<unsigned>(out.rows));
  launch(silu_mul_kernel, grid, kRowThreads, 0, stream, gate_up, out);
}

void launch_gather_rows(Mat x, const std::int32_t* rows, Mat out, cudaStream_t stream) {
  if (out.rows == 0) return;
  launch(gather_rows_kernel, static_cast<unsigned>(out.rows), kRowThreads, 0, stream, x, rows, out);
}

// One block per row. Pass 1 finds the maximum and its lowest index; pass 2 sums e = exp(l - max)
// and e * (l - max), so H = log(sum e) - sum(e * (l - max)) / sum e.
__global__ void summarize_logits_kernel(Mat x, float* entropy, std::int32_t* argmax) {
  pdl_launch_dependents();
  pdl_wait();
  __shared__ float best_value[32];
  __shared__ std::int32_t best_index[32];
  __shared__ float scratch[32];
  const std::int64_t r = blockIdx.x;
  const bf16* row = x.data + r * x.stride;
  float best = -INFINITY;
  std::int32_t index = 0x7fffffff;
  // 16-byte loads where the row allows (a vocab-sized row is ~150k elements; one 2-byte load
  // at a time per thread left the kernel latency-bound at ~90 us a row).
  const bool vec = x.cols % 8 == 0 && x.stride % 8 == 0 && reinterpret_cast<std::uintptr_t>(x.data) % 16 == 0;
  if (vec) {
    for (std::int64_t c = threadIdx.x; c < x.cols / 8; c += blockDim.x) {
      const uint4 raw = *reinterpret_cast<const uint4*>(row + c * 8);
      const bf16* v8 = reinterpret_cast<const bf16*>(&raw);
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const float v = __bfloat162float(v8[j]);
        if (v > best) {  // ascending index per thread: the first maximum is kept
          best = v;
          index = static_cast<std::int32_t>(c * 8 + j);
        }
      }
    }
  } else {
    for (std::int64_t i = threadIdx.x; i < x.cols; i += blockDim.x) {
      const float v = __bfloat162float(row[i]);
      if (v > best) {  // ascending i per thread: the first maximum is kept
        best = v;
        index = static_cast<std::int32_t>(i);
      }
    }
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, best, o);
    const std::int32_t oi = __shfl_xor_sync(0xffffffffu, index, o);
    if (ov > best || (ov == best && oi < index)) {
      best = ov;
      index = oi;
    }
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) {
    best_value[warp] = best;
    best_index[warp] = index;
  }
  __syncthreads();
  best = best_value[0];
  index = best_index[0];
  for (int w = 1; w < static_cast<int>(blockDim.x / 32); ++w) {
    if (best_value[w] > best || (best_value[w] == best && best_index[w] < index)) {
      best = best_value[w];
      index = best_index[w];
    }
  }
  float sum_e = 0.0f, sum_ed = 0.0f;
  auto accumulate = [&](bf16 value) {
    const float d = __bfloat162float(value) - best;
    const float e = __expf(d);
    sum_e += e;
    sum_ed += e * d;
  };
  if (vec) {
    for (std::int64_t c = threadIdx.x; c < x.cols / 8; c += blockDim.x) {
      const uint4 raw = *reinterpret_cast<const uint4*>(row + c * 8);
      const bf16* v8 = reinterpret_cast<const bf16*>(&raw);
#pragma unroll
      for (int j = 0; j < 8; ++j) accumulate(v8[j]);
    }
  } else {
    for (std::int64_t i = threadIdx.x; i < x.cols; i += blockDim.x) accumulate(row[i]);
  }
  sum_e = block_sum(sum_e, scratch);
  sum_ed = block_sum(sum_ed, scratch);
  if (threadIdx.x == 0) {
    entropy[r] = fmaxf(0.0f, logf(sum_e) - sum_ed / sum_e);
    argmax[r] = index;
  }
}

void launch_summarize_logits(Mat x, float* entropy, std::int32_t* argmax, cudaStream_t stream) {
  if (x.rows == 0) return;
  launch(summarize_logits_kernel, static_cast<unsigned>(x.rows), 1024, 0, stream, x, entropy, argmax);
}

void launch_to_float(Mat x, float* out, cudaStream_t stream) {
  if (x.rows == 0) return;
  const dim3 grid(blocks_for(x.cols, kRowThreads), static_cast<unsigned>(x.rows));
  launch(to_float_kernel, grid, kRowThreads, 0, stream, x, out);
}

void launch_f32_to_bf16(const float* in, std::int64_t n, bf16* out, cudaStream_t stream) {
  if (n == 0) return;
  f32_to_bf16_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(in, n, out);
  WEDLM_CUDA_CHECK_LAUNCH("f32_to_bf16_kernel");
}

void launch_f16_to_bf16(const std::uint16_t* in, std::int64_t n, bf16* out, cudaStream_t stream) {
  if (n == 0) return;
  f16_to_bf16_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(in, n, out);
  WEDLM_CUDA_CHECK_LAUNCH("f16_to_bf16_kernel");
}

void launch_qk_norm_rope(const QkNormRopeArgs& a, cudaStream_t stream) {
  if (a.qkv.rows == 0) return;
  constexpr int kWarps = 8;
  const int heads = a.num_heads + a.num_kv_heads * (a.k_cache != nullptr ? 2 : 1);
  const dim3 grid(static_cast<unsigned>(a.qkv.rows), static_cast<unsigned>((heads + kWarps - 1) / kWarps));
  launch(qk_norm_rope_kernel, grid, kWarps * 32, 0, stream, a);
}

void launch_add_rmsnorm(Mat residual, Mat delta, const float* w, float eps, Mat out, cudaStream_t stream) {
  launch_add_rmsnorm_into(residual, delta, residual, w, eps, out, stream);
}

}  // namespace wedlm::cuda
