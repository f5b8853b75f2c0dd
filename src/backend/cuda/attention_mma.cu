// Flash attention with register-resident tiles (the FlashAttention-2 layout): each warp owns 16
// query units; scores, probabilities and the output accumulator live in mma.sync fragments, the
// softmax statistics are reduced across the 4 threads that share a row, and probabilities feed
// the P.V product straight from the score registers. K/V tiles are staged in shared memory
// (V read transposed by ldmatrix). bf16 operands, fp32 accumulation and softmax.
#include <cooperative_groups.h>
#include <cuda_bf16.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "backend/cuda/attention.h"
#include "backend/cuda/cluster_merge.cuh"
#include "backend/cuda/attention_mma.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/fragment_softmax.cuh"
#include "backend/cuda/mma_sync.cuh"
#include "backend/cuda/pdl.h"
#include "backend/cuda/shared_staging.cuh"

namespace wedlm::cuda {

namespace {

__device__ __forceinline__ void mma_bf16(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  mma16816(d, a[0], a[1], a[2], a[3], b0, b1);
}

// Key tiles are staged by cp_async16 (shared_staging.cuh), two buffers deep: the next tile's K and
// V are in flight while the current one is multiplied. A decode CTA has only a few tiles, so what
// bounds it is the number of dependent memory round trips, not arithmetic.
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// RUNS: block_size is a multiple of the run of consecutive keys a thread group stages (kRun),
// so each thread's keys of a tile lie in one cache block: one table entry a tile, loaded a tile
// ahead, and one 64-bit address step a key. The general path (any block_size) walks blocks key
// by key: ~30 integer instructions and a table load on the critical path per copy, as many
// instructions as the tile's math (Nsight Compute: 1350 a warp a tile, of which ~600 integer).
template <int WARPS, int DP>
__host__ __device__ constexpr int staging_run() {
  return kKeyTile * (DP / 8) / (WARPS * 32);
}

// CLUSTER: the launch groups each tile's key splits into a thread block cluster (rank k = split
// k); the splits merge their results through distributed shared memory, each rank writing the
// output of 1/cluster of the tile's units (attention_plan.h).
template <int WARPS, int DP, bool RUNS, bool CLUSTER>
__global__ void __launch_bounds__(WARPS * 32) attention_mma_kernel(AttentionArgs a) {
  pdl_launch_dependents();
  constexpr int kM = 16 * WARPS, kThreads = WARPS * 32, kLd = DP + 8, kNt = DP / 8;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* q_s = reinterpret_cast<bf16*>(smem);
  bf16* kv_s = q_s + kM * kLd;  // [2 buffers][K | V][kKeyTile][kLd]

  if (a.counts != nullptr && static_cast<int>(blockIdx.x) >= a.counts[0]) return;  // whole CTA: no barrier skipped
  const AttnWork w = a.work[blockIdx.x];
  const AttnSequence seq = a.sequences[w.seq];
  const int d = a.head_dim, group = a.num_heads / a.num_kv_heads, units = seq.rows * group;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  // Scores are kept in log2 units (exp2 is one MUFU instruction; expf is a longer sequence);
  // the partial maxima are written back in natural-log units for the combine kernel.
  const float scale2 = rsqrtf(static_cast<float>(d)) * 1.4426950408889634f;
  constexpr int kVecs = DP / 8;

  const std::int32_t* table = a.tables + seq.table_offset;
  const std::int64_t head_stride = static_cast<std::int64_t>(a.block_size) * d;
  const int col = (threadIdx.x % kVecs) * 8;
  const bf16* k_head = a.k_cache + static_cast<std::int64_t>(w.kv_head) * head_stride + col;
  const bf16* v_head = a.v_cache + static_cast<std::int64_t>(w.kv_head) * head_stride + col;
  const std::int64_t block_stride = static_cast<std::int64_t>(a.num_kv_heads) * head_stride;
  // RUNS: thread group threadIdx.x / kVecs stages keys [run0, run0 + kRun) of each tile.
  constexpr int kRun = staging_run<WARPS, DP>();
  const int run0 = (threadIdx.x / kVecs) * kRun;
  auto run_block = [&](int kt) { return kt + run0 < w.key_end ? table[(kt + run0) / a.block_size] : 0; };
  auto issue_run = [&](int buffer, int kt, std::int32_t block) {
    bf16* k_dst = kv_s + buffer * 2 * kKeyTile * kLd + run0 * kLd + col;
    bf16* v_dst = k_dst + kKeyTile * kLd;
    const int j0 = kt + run0;
    const std::int64_t at = block * block_stride + static_cast<std::int64_t>(j0 % a.block_size) * d;
    const bf16* k_src = k_head + at;
    const bf16* v_src = v_head + at;
    const bool col_ok = col < d;
#pragma unroll
    for (int key = 0; key < kRun; ++key) {
      const bool valid = col_ok && j0 + key < w.key_end;
      cp_async16(k_dst + key * kLd, valid ? k_src + key * d : a.k_cache, valid);
      cp_async16(v_dst + key * kLd, valid ? v_src + key * d : a.v_cache, valid);
    }
  };
  // General path: a thread stages the same 16-byte column of every (kThreads / kVecs)-th key of
  // a tile; the key's cache block and offset advance by addition.
  constexpr int kKeysPerPass = kThreads / kVecs;
  const int key0 = threadIdx.x / kVecs;
  auto issue_keys = [&](int buffer, int kt) {
    bf16* k_dst = kv_s + buffer * 2 * kKeyTile * kLd + key0 * kLd + col;
    bf16* v_dst = k_dst + kKeyTile * kLd;
    int j = kt + key0, block = j / a.block_size, offset = j - block * a.block_size;
#pragma unroll
    for (int key = 0; key < kKeyTile; key += kKeysPerPass) {
      const bool valid = j < w.key_end && col < d;
      const std::int64_t at = valid ? table[block] * block_stride + static_cast<std::int64_t>(offset) * d : 0;
      cp_async16(k_dst + key * kLd, valid ? k_head + at : a.k_cache, valid);
      cp_async16(v_dst + key * kLd, valid ? v_head + at : a.v_cache, valid);
      j += kKeysPerPass;
      for (offset += kKeysPerPass; offset >= a.block_size; offset -= a.block_size) ++block;
    }
  };
  // The plan (work, sequences, block tables) was copied in by a memcpy ordered before the kernel
  // that precedes this one (the step area before a replayed chunk; eagerly, the plan upload that
  // run_attention issues before launching the rope kernel), and keys before cache_start were
  // written before this chunk began (its first kernel is launched without programmatic overlap,
  // pdl.h): the first key tile may be fetched before pdl_wait(), while the rope kernel that
  // writes this chunk's keys and Q is still running.
  const bool early = w.key_begin + kKeyTile <= seq.cache_start;
  std::int32_t next_block = 0;  // RUNS: the table entry of the next tile to issue
  auto issue_first = [&] {
    if constexpr (RUNS) {
      issue_run(0, w.key_begin, run_block(w.key_begin));
      next_block = run_block(w.key_begin + kKeyTile);
    } else {
      issue_keys(0, w.key_begin);
    }
  };
  if (early) {
    issue_first();
    cp_async_commit();
  }
  pdl_wait();
  for (int i = threadIdx.x; i < kM * kVecs; i += kThreads) {
    const int u = i / kVecs, c = (i % kVecs) * 8, unit = w.unit_begin + u;
    const bool valid = unit < units && c < d;
    const bf16* src = valid ? a.qkv + (seq.row_begin + unit / group) * a.qkv_stride +
                                  (w.kv_head * group + unit % group) * d + c
                            : a.qkv;
    cp_async16(q_s + u * kLd + c, src, valid);
  }
  if (!early) issue_first();
  cp_async_commit();

  // This thread's two rows (units) and the last key each may see (-1: padding row).
  const int u0 = warp * 16 + g, u1 = u0 + 8;
  const int limit0 = w.unit_begin + u0 < units ? seq.cache_start + (w.unit_begin + u0) / group : -1;
  const int limit1 = w.unit_begin + u1 < units ? seq.cache_start + (w.unit_begin + u1) / group : -1;
  // ldmatrix row addresses of this lane: Q (matrices: units 0-7 | 8-15 x dims 0-7 | 8-15) and
  // K (keys 0-7 x dims 0-7 | 8-15, then keys 8-15 likewise).
  const unsigned q_lane = static_cast<unsigned>(__cvta_generic_to_shared(q_s)) +
                          static_cast<unsigned>(((warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * kLd + (lane >> 4) * 8) * 2);
  const unsigned k_lane = static_cast<unsigned>((((lane >> 4) * 8 + (lane & 7)) * kLd + ((lane >> 3) & 1) * 8) * 2);
  float o[kNt][4];
#pragma unroll
  for (int n = 0; n < kNt; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;

  for (int kt = w.key_begin, tile = 0; kt < w.key_end; kt += kKeyTile, ++tile) {
    if (kt + kKeyTile < w.key_end) {
      // That buffer was released at the end of the last pass.
      if constexpr (RUNS) {
        issue_run((tile + 1) & 1, kt + kKeyTile, next_block);
        next_block = run_block(kt + 2 * kKeyTile);  // used next pass: its latency hides behind this tile
      } else {
        issue_keys((tile + 1) & 1, kt + kKeyTile);
      }
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();  // this tile (and Q, on the first pass) is in shared memory for every thread
    const bf16* k_s = kv_s + (tile & 1) * 2 * kKeyTile * kLd;
    const unsigned v_base = static_cast<unsigned>(__cvta_generic_to_shared(k_s + kKeyTile * kLd));
    // Warp-uniform skip (mma.sync needs the whole warp): none of its rows sees these keys.
    if (!__all_sync(0xffffffffu, kt > limit0 && kt > limit1)) {
      // S = Q K^T: 8 fragments of 8 keys. ldmatrix.x4 gives a Q fragment (16 units x 16 dims)
      // or the K fragments of two 8-key groups in one instruction.
      float s[8][4];
#pragma unroll
      for (int n = 0; n < 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
      const unsigned k_base = static_cast<unsigned>(__cvta_generic_to_shared(k_s)) + k_lane;
#pragma unroll
      for (int ks = 0; ks < DP / 16; ++ks) {
        unsigned qa[4];
        ldmatrix_x4(qa, q_lane + ks * 32);
#pragma unroll
        for (int np = 0; np < 4; ++np) {
          unsigned kb[4];
          ldmatrix_x4(kb, k_base + static_cast<unsigned>((np * 16 * kLd + ks * 16) * 2));
          mma_bf16(s[2 * np], qa, kb[0], kb[1]);
          mma_bf16(s[2 * np + 1], qa, kb[2], kb[3]);
        }
      }

      // Causal mask (only on tiles that cross a row's last visible key), scale into log2 units,
      // online softmax over the quad that shares each row.
      const int last0 = min(limit0, w.key_end - 1), last1 = min(limit1, w.key_end - 1);
      if (kt + kKeyTile - 1 <= last0 && kt + kKeyTile - 1 <= last1) {
#pragma unroll
        for (int n = 0; n < 8; ++n) {
#pragma unroll
          for (int e = 0; e < 4; ++e) s[n][e] *= scale2;
        }
      } else {
#pragma unroll
        for (int n = 0; n < 8; ++n) {
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int key = kt + n * 8 + 2 * t + e;
            s[n][e] = key <= last0 ? s[n][e] * scale2 : -INFINITY;
            s[n][2 + e] = key <= last1 ? s[n][2 + e] * scale2 : -INFINITY;
          }
        }
      }
      float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
      for (int n = 0; n < 8; ++n) {
        mx0 = fmaxf(mx0, fmaxf(s[n][0], s[n][1]));
        mx1 = fmaxf(mx1, fmaxf(s[n][2], s[n][3]));
      }
      mx0 = quad_max(mx0);
      mx1 = quad_max(mx1);
      const float new0 = fmaxf(m0, mx0), new1 = fmaxf(m1, mx1);
      // A row with no visible key yet keeps m = -inf: its probabilities are 0 and nothing rescales.
      const float base0 = new0 == -INFINITY ? 0.0f : new0, base1 = new1 == -INFINITY ? 0.0f : new1;
      const float alpha0 = exp2f(m0 - base0), alpha1 = exp2f(m1 - base1);
      float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
      for (int n = 0; n < 8; ++n) {
        s[n][0] = exp2f(s[n][0] - base0);
        s[n][1] = exp2f(s[n][1] - base0);
        s[n][2] = exp2f(s[n][2] - base1);
        s[n][3] = exp2f(s[n][3] - base1);
        sum0 += s[n][0] + s[n][1];
        sum1 += s[n][2] + s[n][3];
      }
      sum0 = quad_sum(sum0);
      sum1 = quad_sum(sum1);
      l0 = l0 * alpha0 + sum0;
      l1 = l1 * alpha1 + sum1;
      m0 = new0;
      m1 = new1;
#pragma unroll
      for (int n = 0; n < kNt; ++n) {
        o[n][0] *= alpha0;
        o[n][1] *= alpha0;
        o[n][2] *= alpha1;
        o[n][3] *= alpha1;
      }

      // O += P V, 16 keys at a time; V fragments by ldmatrix.trans (two 8-wide dim slices per x4).
#pragma unroll
      for (int kc = 0; kc < kKeyTile / 16; ++kc) {
        unsigned pa[4];
        pa[0] = pack_bf16x2(s[2 * kc][0], s[2 * kc][1]);
        pa[1] = pack_bf16x2(s[2 * kc][2], s[2 * kc][3]);
        pa[2] = pack_bf16x2(s[2 * kc + 1][0], s[2 * kc + 1][1]);
        pa[3] = pack_bf16x2(s[2 * kc + 1][2], s[2 * kc + 1][3]);
        const int key = kc * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
#pragma unroll
        for (int n = 0; n < kNt; n += 2) {
          const int col = n * 8 + (lane >> 4) * 8;
          const unsigned addr = v_base + static_cast<unsigned>((key * kLd + col) * 2);
          unsigned b0, b1, b2, b3;
          asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                       : "=r"(b0), "=r"(b1), "=r"(b2), "=r"(b3)
                       : "r"(addr));
          mma_bf16(o[n], pa, b0, b1);
          mma_bf16(o[n + 1], pa, b2, b3);
        }
      }
    }
    __syncthreads();  // this tile's buffer may be refilled by the next pass
  }

  if constexpr (CLUSTER) {
    // Every split's unnormalized output and statistics into its own shared memory (the K/V
    // buffers are free: the loop ended with a barrier), then rank r merges units
    // [r * kM / splits, (r + 1) * kM / splits) from all ranks.
    namespace cg = cooperative_groups;
    cg::cluster_group cluster = cg::this_cluster();
    float* o_s = reinterpret_cast<float*>(kv_s);  // [kM][DP]
    float* ml_s = o_s + kM * DP;                  // [kM][2]: max (log2 units), sum
    __shared__ float weight_s[kM][kMaxAttentionCluster], sums_s[kM][kMaxAttentionCluster];
    __shared__ float inv_total_s[kM];
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int u = half == 0 ? u0 : u1;
#pragma unroll
      for (int n = 0; n < kNt; ++n) {
        o_s[u * DP + n * 8 + 2 * t] = o[n][2 * half];
        o_s[u * DP + n * 8 + 2 * t + 1] = o[n][2 * half + 1];
      }
      if (t == 0) {
        ml_s[u * 2] = half == 0 ? m0 : m1;
        ml_s[u * 2 + 1] = half == 0 ? l0 : l1;
      }
    }
    const ClusterShare share = cluster_merge_weights(cluster, ml_s, kM, weight_s, sums_s, inv_total_s);
    cluster_merge_out(cluster, share, o_s, DP, d, weight_s, inv_total_s, a, seq, w);
    return;
  }

  // Epilogue: rows g and g + 8 of this warp, columns n * 8 + 2t, +1.
  const int dps = padded_head_dim(d);
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int u = half == 0 ? u0 : u1;
    const int unit = w.unit_begin + u;
    const float l = half == 0 ? l0 : l1, m = half == 0 ? m0 : m1;
    if (w.partial < 0) {
      if (unit >= units) continue;
      bf16* dst = a.out + (seq.row_begin + unit / group) * a.out_stride + (w.kv_head * group + unit % group) * d;
      const float inv = 1.0f / l;
#pragma unroll
      for (int n = 0; n < kNt; ++n) {
        const int col = n * 8 + 2 * t;
        if (col < d) dst[col] = __float2bfloat16(o[n][2 * half] * inv);
        if (col + 1 < d) dst[col + 1] = __float2bfloat16(o[n][2 * half + 1] * inv);
      }
    } else {
      if (unit >= units) continue;  // padding unit: the combine kernel never reads its slot
      const std::int64_t slot = static_cast<std::int64_t>(w.partial) * kM + u;
      float* po = a.partial_o + slot * dps;
#pragma unroll
      for (int n = 0; n < kNt; ++n) {
        const int col = n * 8 + 2 * t;
        if (col < d) po[col] = o[n][2 * half];
        if (col + 1 < d) po[col + 1] = o[n][2 * half + 1];
      }
      if (t == 0) {
        a.partial_ml[slot * 2] = m * 0.6931471805599453f;  // -inf stays -inf
        a.partial_ml[slot * 2 + 1] = l;
      }
    }
  }
}

template <int WARPS, int DP, bool RUNS, bool CLUSTER>
void launch_kernel(const AttentionArgs& a, cudaStream_t stream) {
  constexpr int bytes = (16 * WARPS + 4 * kKeyTile) * (DP + 8) * 2;
  static_assert(!CLUSTER || 4 * kKeyTile * (DP + 8) * 2 >= (16 * WARPS) * (DP + 2) * 4,
                "a cluster's merged outputs fit the K/V buffers");
  auto kernel = attention_mma_kernel<WARPS, DP, RUNS, CLUSTER>;
  static bool configured = false;
  if (!configured) {
    WEDLM_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    configured = true;
  }
  // Whole clusters: a graph's grid (a capacity) is rounded up, and the blocks past the step's
  // work items, whole clusters of them, exit at once.
  const int cluster = CLUSTER ? a.cluster : 1;
  const unsigned grid = static_cast<unsigned>((a.work_count + cluster - 1) / cluster * cluster);
  launch_clustered(kernel, grid, WARPS * 32, bytes, static_cast<unsigned>(cluster), stream, a);
}

template <int WARPS, int DP>
void launch(const AttentionArgs& a, cudaStream_t stream) {
  const bool runs = a.block_size % staging_run<WARPS, DP>() == 0;
  if constexpr (WARPS == 4) {
    if (a.cluster > 1) {
      if (runs) return launch_kernel<WARPS, DP, true, true>(a, stream);
      return launch_kernel<WARPS, DP, false, true>(a, stream);
    }
  }
  if (runs) return launch_kernel<WARPS, DP, true, false>(a, stream);
  launch_kernel<WARPS, DP, false, false>(a, stream);
}

template <int WARPS>
void launch_dp(const AttentionArgs& a, cudaStream_t stream) {
  if (a.head_dim <= 32) return launch<WARPS, 32>(a, stream);
  if (a.head_dim <= 64) return launch<WARPS, 64>(a, stream);
  if (a.head_dim <= 128) return launch<WARPS, 128>(a, stream);
  return launch<WARPS, 256>(a, stream);
}

template <int DP>
ClusterCapacity capacity_for() {
  static const ClusterCapacity capacity = [] {
    ClusterCapacity c;
    constexpr int bytes = (16 * 4 + 4 * kKeyTile) * (DP + 8) * 2;
    // The plan gives this kernel power-of-two clusters only.
    for (int size = 0; size <= ClusterCapacity::kLargest; ++size) c.active[size] = 0;
    for (int size = 2; size <= kMaxAttentionCluster; size *= 2) {
      c.active[size] = max_active_clusters(attention_mma_kernel<4, DP, true, true>, 4 * 32, bytes, static_cast<unsigned>(size));
    }
    const char* log = std::getenv("WEDLM_CUDA_ATTN_LOG");
    if (log != nullptr && *log == '1') {
      std::fprintf(stderr, "attention clusters at once (head size %d): %d of 2, %d of 4, %d of 8\n", DP, c.active[2],
                   c.active[4], c.active[8]);
    }
    return c;
  }();
  return capacity;
}

}  // namespace

ClusterCapacity attention_cluster_capacity(int head_dim) {
  if (head_dim <= 32) return capacity_for<32>();
  if (head_dim <= 64) return capacity_for<64>();
  if (head_dim <= 128) return capacity_for<128>();
  return capacity_for<256>();
}

void launch_attention_mma(const AttentionArgs& a, cudaStream_t stream) {
  if (a.m_tile == 16) {
    launch_dp<1>(a, stream);
  } else if (a.m_tile == 64) {
    launch_dp<4>(a, stream);
  } else {
    launch_dp<8>(a, stream);
  }
}

}  // namespace wedlm::cuda
