// Flash attention over the paged KV cache with WMMA (bf16 operands, fp32 accumulation). Scores,
// the running softmax statistics and the output accumulator stay fp32 in shared memory; only the
// probabilities are rounded to bf16 for the P.V product, as in FlashAttention.
#include <mma.h>

#include <cmath>

#include "backend/cuda/attention.h"

#include <cstdlib>

#include "backend/cuda/attention_mma.h"
#include "backend/cuda/attention_wgmma.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/pdl.h"

namespace wedlm::cuda {

namespace {

using namespace nvcuda;

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kLoadBatch = 8;  // 16-byte K and V vectors per thread per batch: a whole tile at head_dim 128

__host__ __device__ constexpr int align_up(int x, int a) { return (x + a - 1) / a * a; }

// Shared-memory layout for a tile of M units and padded head size dp. Row pitches are padded
// (8 bf16 / 4 floats) against bank conflicts and keep every 16-row fragment 32-byte aligned.
struct Layout {
  int ldh, lds, ldp, ldo;
  int q, k, v, s, p, o, stats, bytes;
  __host__ __device__ Layout(int m, int dp) {
    ldh = dp + 8;
    lds = kKeyTile + 4;
    ldp = kKeyTile + 8;
    ldo = dp + 4;
    int at = 0;
    q = at; at = align_up(at + m * ldh * 2, 128);
    k = at; at = align_up(at + kKeyTile * ldh * 2, 128);
    v = at; at = align_up(at + kKeyTile * ldh * 2, 128);
    s = at; at = align_up(at + m * lds * 4, 128);
    p = at; at = align_up(at + m * ldp * 2, 128);
    o = at; at = align_up(at + m * ldo * 4, 128);
    stats = at; at = align_up(at + m * 3 * 4, 128);
    bytes = at;
  }
};

template <int M>
__global__ void __launch_bounds__(kThreads) attention_kernel(AttentionArgs a) {
  pdl_launch_dependents();
  pdl_wait();
  extern __shared__ __align__(128) unsigned char smem[];
  const int d = a.head_dim, dp = padded_head_dim(d);
  const Layout L(M, dp);
  bf16* q_s = reinterpret_cast<bf16*>(smem + L.q);
  bf16* k_s = reinterpret_cast<bf16*>(smem + L.k);
  bf16* v_s = reinterpret_cast<bf16*>(smem + L.v);
  float* s_s = reinterpret_cast<float*>(smem + L.s);
  bf16* p_s = reinterpret_cast<bf16*>(smem + L.p);
  float* o_s = reinterpret_cast<float*>(smem + L.o);
  float* m_s = reinterpret_cast<float*>(smem + L.stats);
  float* l_s = m_s + M;
  float* alpha_s = l_s + M;

  if (a.counts != nullptr && static_cast<int>(blockIdx.x) >= a.counts[0]) return;  // whole CTA: no barrier skipped
  const AttnWork w = a.work[blockIdx.x];
  const AttnSequence seq = a.sequences[w.seq];
  const int group = a.num_heads / a.num_kv_heads;
  const int units = seq.rows * group;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int vecs = d / 8;  // 16-byte vectors per head row
  const float scale = rsqrtf(static_cast<float>(d));

  // Q tile (zero rows past the sequence's units, zero padding columns), O = 0, stats reset.
  for (int i = tid; i < M * (dp / 8); i += kThreads) {
    const int u = i / (dp / 8), c = (i % (dp / 8)) * 8;
    uint4 val = make_uint4(0, 0, 0, 0);
    const int unit = w.unit_begin + u;
    if (unit < units && c < d) {
      const int r = unit / group, qh = w.kv_head * group + unit % group;
      val = *reinterpret_cast<const uint4*>(a.qkv + (seq.row_begin + r) * a.qkv_stride + qh * d + c);
    }
    *reinterpret_cast<uint4*>(q_s + u * L.ldh + c) = val;
  }
  for (int i = tid; i < kKeyTile * (dp / 8); i += kThreads) {  // padding columns stay zero
    const int key = i / (dp / 8), c = (i % (dp / 8)) * 8;
    if (c >= d) {
      *reinterpret_cast<uint4*>(k_s + key * L.ldh + c) = make_uint4(0, 0, 0, 0);
      *reinterpret_cast<uint4*>(v_s + key * L.ldh + c) = make_uint4(0, 0, 0, 0);
    }
  }
  for (int i = tid; i < M * L.ldo; i += kThreads) o_s[i] = 0.0f;
  for (int u = tid; u < M; u += kThreads) {
    m_s[u] = -INFINITY;
    l_s[u] = 0.0f;
  }

  const std::int32_t* table = a.tables + seq.table_offset;
  const std::int64_t head_stride = static_cast<std::int64_t>(a.block_size) * d;
  for (int kt = w.key_begin; kt < w.key_end; kt += kKeyTile) {
    __syncthreads();  // previous tile's K/V/P fully consumed
    // All of a batch's global loads are issued before any is stored, so each thread has up to
    // 2 * kLoadBatch 16-byte loads in flight instead of one round trip per vector.
    for (int base = tid; base < kKeyTile * vecs; base += kLoadBatch * kThreads) {
      uint4 kr[kLoadBatch], vr[kLoadBatch];
#pragma unroll
      for (int b = 0; b < kLoadBatch; ++b) {
        const int i = base + b * kThreads;
        kr[b] = make_uint4(0, 0, 0, 0);
        vr[b] = make_uint4(0, 0, 0, 0);
        const int key = i / vecs, j = kt + key;
        if (i < kKeyTile * vecs && j < w.key_end) {
          const std::int64_t block = table[j / a.block_size];
          const std::int64_t at =
              (block * a.num_kv_heads + w.kv_head) * head_stride + (j % a.block_size) * d + (i % vecs) * 8;
          kr[b] = __ldg(reinterpret_cast<const uint4*>(a.k_cache + at));
          vr[b] = __ldg(reinterpret_cast<const uint4*>(a.v_cache + at));
        }
      }
#pragma unroll
      for (int b = 0; b < kLoadBatch; ++b) {
        const int i = base + b * kThreads;
        if (i < kKeyTile * vecs) {
          const int key = i / vecs, c = (i % vecs) * 8;
          *reinterpret_cast<uint4*>(k_s + key * L.ldh + c) = kr[b];
          *reinterpret_cast<uint4*>(v_s + key * L.ldh + c) = vr[b];
        }
      }
    }
    __syncthreads();

    // S = Q K^T for this key tile.
    for (int f = warp; f < (M / 16) * (kKeyTile / 16); f += kWarps) {
      const int i = f / (kKeyTile / 16), jb = f % (kKeyTile / 16);
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.0f);
      for (int kk = 0; kk < dp; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> qa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> kb;
        wmma::load_matrix_sync(qa, q_s + i * 16 * L.ldh + kk, L.ldh);
        wmma::load_matrix_sync(kb, k_s + jb * 16 * L.ldh + kk, L.ldh);
        wmma::mma_sync(acc, qa, kb, acc);
      }
      wmma::store_matrix_sync(s_s + i * 16 * L.lds + jb * 16, acc, L.lds, wmma::mem_row_major);
    }
    __syncthreads();

    // Online softmax, one warp per unit row: causal limit is the row's own cache slot.
    for (int u = warp; u < M; u += kWarps) {
      const int unit = w.unit_begin + u;
      const int limit = unit < units ? seq.cache_start + unit / group : -1;  // last key this row sees
      float s0 = -INFINITY, s1 = -INFINITY;
      const int j0 = kt + lane, j1 = kt + lane + 32;
      if (j0 <= limit && j0 < w.key_end) s0 = s_s[u * L.lds + lane] * scale;
      if (j1 <= limit && j1 < w.key_end) s1 = s_s[u * L.lds + lane + 32] * scale;
      float mx = fmaxf(s0, s1);
      for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
      const float m_old = m_s[u];
      const float m_new = fmaxf(m_old, mx);
      float p0 = 0.0f, p1 = 0.0f, alpha = 1.0f;
      if (m_new != -INFINITY) {
        p0 = expf(s0 - m_new);  // exp(-inf) = 0 for masked keys
        p1 = expf(s1 - m_new);
        alpha = expf(m_old - m_new);
      }
      float sum = p0 + p1;
      for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
      p_s[u * L.ldp + lane] = __float2bfloat16(p0);
      p_s[u * L.ldp + lane + 32] = __float2bfloat16(p1);
      if (lane == 0) {
        m_s[u] = m_new;
        l_s[u] = l_s[u] * alpha + sum;
        alpha_s[u] = alpha;
      }
    }
    __syncthreads();
    for (int i = tid; i < M * dp; i += kThreads) {
      const int u = i / dp, c = i % dp;
      o_s[u * L.ldo + c] *= alpha_s[u];
    }
    __syncthreads();

    // O += P V.
    for (int f = warp; f < (M / 16) * (dp / 16); f += kWarps) {
      const int i = f / (dp / 16), jb = f % (dp / 16);
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::load_matrix_sync(acc, o_s + i * 16 * L.ldo + jb * 16, L.ldo, wmma::mem_row_major);
      for (int kk = 0; kk < kKeyTile; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> pa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> vb;
        wmma::load_matrix_sync(pa, p_s + i * 16 * L.ldp + kk, L.ldp);
        wmma::load_matrix_sync(vb, v_s + kk * L.ldh + jb * 16, L.ldh);
        wmma::mma_sync(acc, pa, vb, acc);
      }
      wmma::store_matrix_sync(o_s + i * 16 * L.ldo + jb * 16, acc, L.ldo, wmma::mem_row_major);
    }
  }
  __syncthreads();

  if (w.partial < 0) {
    for (int i = tid; i < M * d; i += kThreads) {
      const int u = i / d, c = i % d;
      const int unit = w.unit_begin + u;
      if (unit >= units) continue;
      const int r = unit / group, qh = w.kv_head * group + unit % group;
      a.out[(seq.row_begin + r) * a.out_stride + qh * d + c] = __float2bfloat16(o_s[u * L.ldo + c] / l_s[u]);
    }
  } else {
    float* po = a.partial_o + static_cast<std::int64_t>(w.partial) * M * dp;
    for (int i = tid; i < M * dp; i += kThreads) po[i] = o_s[(i / dp) * L.ldo + i % dp];
    float* pml = a.partial_ml + static_cast<std::int64_t>(w.partial) * M * 2;
    for (int u = tid; u < M; u += kThreads) {
      pml[2 * u] = m_s[u];
      pml[2 * u + 1] = l_s[u];
    }
  }
}

constexpr int kCombineThreads = 128;

__device__ float combine_block_reduce(float v, bool is_max, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) {
    const float other = __shfl_xor_sync(0xffffffffu, v, o);
    v = is_max ? fmaxf(v, other) : v + other;
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();  // scratch free from the previous reduction
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float r = scratch[0];
  for (int w = 1; w < kCombineThreads / 32; ++w) r = is_max ? fmaxf(r, scratch[w]) : r + scratch[w];
  return r;
}

// One block per (combine item, unit) pair: rescales each split by exp(m_split - m_max). The
// splits' statistics are read in parallel and their weights kept in shared memory, so that each
// column's sum over splits issues independent loads (a decode row has ~32 splits; read one
// after another they were a chain of dependent L2 round trips). A graph's grid may be smaller
// than the pairs of its largest plan: blocks then take every gridDim.x-th pair.
__global__ void __launch_bounds__(kCombineThreads) combine_kernel(AttentionArgs a) {
  pdl_launch_dependents();
  pdl_wait();
  const int items = a.counts != nullptr ? a.counts[1] : a.combine_count;
  const int span = a.counts != nullptr ? a.counts[2] : a.combine_units;
  __shared__ float scratch[kCombineThreads / 32];
  __shared__ float weight[kCombineThreads];
  const int group = a.num_heads / a.num_kv_heads;
  const int d = a.head_dim, dp = padded_head_dim(d), m_tile = a.m_tile, tid = threadIdx.x;
  for (int pair = blockIdx.x; pair < items * span; pair += gridDim.x) {  // block-uniform
    const AttnCombine c = a.combine[pair / span];
    const int u = pair % span;
    const AttnSequence seq = a.sequences[c.seq];
    const int unit = c.unit_begin + u;
    if (unit >= seq.rows * group) continue;  // a padding unit of a shorter tile
    auto slot = [&](int s) { return static_cast<std::int64_t>(c.partial_base + s) * m_tile + u; };
    float m_max = -INFINITY;
    for (int s = tid; s < c.splits; s += kCombineThreads) m_max = fmaxf(m_max, a.partial_ml[slot(s) * 2]);
    m_max = combine_block_reduce(m_max, true, scratch);
    float total = 0.0f;
    for (int s = tid; s < c.splits; s += kCombineThreads) {
      const float m = a.partial_ml[slot(s) * 2];
      if (m != -INFINITY) total += a.partial_ml[slot(s) * 2 + 1] * expf(m - m_max);
    }
    total = combine_block_reduce(total, false, scratch);
    float acc[kMaxHeadDim / kCombineThreads] = {};
    for (int s0 = 0; s0 < c.splits; s0 += kCombineThreads) {
      __syncthreads();  // the previous chunk's (or pair's) weights are consumed
      if (s0 + tid < c.splits) {
        const float m = a.partial_ml[slot(s0 + tid) * 2];
        weight[tid] = m == -INFINITY ? 0.0f : expf(m - m_max);
      }
      __syncthreads();
      const int n = min(kCombineThreads, c.splits - s0);
#pragma unroll
      for (int j = 0; j < kMaxHeadDim / kCombineThreads; ++j) {
        const int col = tid + j * kCombineThreads;
        if (col >= d) continue;
        const float* po = a.partial_o + slot(s0) * dp + col;
        float sum = 0.0f;
#pragma unroll 8
        for (int i = 0; i < n; ++i) sum += po[static_cast<std::int64_t>(i) * m_tile * dp] * weight[i];
        acc[j] += sum;
      }
    }
    const int r = unit / group, qh = c.kv_head * group + unit % group;
#pragma unroll
    for (int j = 0; j < kMaxHeadDim / kCombineThreads; ++j) {
      const int col = tid + j * kCombineThreads;
      if (col < d) a.out[(seq.row_begin + r) * a.out_stride + qh * d + col] = __float2bfloat16(acc[j] / total);
    }
  }
}

__global__ void kv_scatter_kernel(const bf16* qkv, std::int64_t qkv_stride, const std::int32_t* row_slot,
                                  int num_heads, int num_kv_heads, int head_dim, int block_size, bf16* k_cache,
                                  bf16* v_cache) {
  pdl_launch_dependents();
  pdl_wait();
  const std::int64_t r = blockIdx.x;
  const std::int64_t slot = row_slot[r];
  if (slot < 0) return;
  const std::int64_t block = slot / block_size, offset = slot % block_size;
  const bf16* k = qkv + r * qkv_stride + static_cast<std::int64_t>(num_heads) * head_dim;
  const bf16* v = k + static_cast<std::int64_t>(num_kv_heads) * head_dim;
  for (int i = threadIdx.x; i < num_kv_heads * head_dim; i += blockDim.x) {
    const int h = i / head_dim, c = i % head_dim;
    const std::int64_t at = ((block * num_kv_heads + h) * block_size + offset) * head_dim + c;
    k_cache[at] = k[i];
    v_cache[at] = v[i];
  }
}

template <int M>
void launch_tiles(const AttentionArgs& a, cudaStream_t stream) {
  const int bytes = Layout(M, padded_head_dim(a.head_dim)).bytes;
  static int configured = 0;  // the largest dynamic size this instantiation was opened up to
  if (bytes > configured) {
    WEDLM_CUDA_CHECK(cudaFuncSetAttribute(attention_kernel<M>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    configured = bytes;
  }
  launch(attention_kernel<M>, static_cast<unsigned>(a.work_count), kThreads, static_cast<std::size_t>(bytes), stream, a);
}

}  // namespace

void launch_kv_scatter(const bf16* qkv, std::int64_t qkv_stride, std::int64_t rows, const std::int32_t* row_slot,
                       int num_heads, int num_kv_heads, int head_dim, int block_size, bf16* k_cache, bf16* v_cache,
                       cudaStream_t stream) {
  if (rows == 0) return;
  launch(kv_scatter_kernel, static_cast<unsigned>(rows), 256, 0, stream, qkv, qkv_stride, row_slot, num_heads, num_kv_heads,
                                                                      head_dim, block_size, k_cache, v_cache);
}

// The register-tiled kernel is the default; WEDLM_CUDA_WMMA_ATTENTION=1 selects the first,
// shared-memory WMMA kernel (kept for A/B timing and as a cross-check).
bool attention_uses_wmma() {
  static const bool wmma = [] {
    const char* env = std::getenv("WEDLM_CUDA_WMMA_ATTENTION");
    return env != nullptr && *env == '1';
  }();
  return wmma;
}

void launch_attention_tiles(const AttentionArgs& a, cudaStream_t stream) {
  if (a.work_count == 0) return;
  if (a.wgmma) {
    launch_attention_wgmma(a, stream);
  } else if (!attention_uses_wmma()) {
    launch_attention_mma(a, stream);
  } else if (a.m_tile == 16) {
    launch_tiles<16>(a, stream);
  } else {
    launch_tiles<64>(a, stream);
  }
}

void launch_attention_combine(const AttentionArgs& a, cudaStream_t stream) {
  const int pairs = a.work_count == 0 || a.cluster > 1 ? 0 : a.combine_count * a.combine_units;
  if (pairs > 0) {
    const int blocks = a.combine_blocks > 0 ? a.combine_blocks : pairs;
    launch(combine_kernel, static_cast<unsigned>(blocks), kCombineThreads, 0, stream, a);
  }
}

void launch_attention(const AttentionArgs& a, cudaStream_t stream) {
  launch_attention_tiles(a, stream);
  launch_attention_combine(a, stream);
}

}  // namespace wedlm::cuda
