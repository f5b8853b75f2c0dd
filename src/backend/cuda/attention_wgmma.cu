// Decode attention with warpgroup MMA (sm_90a) for steps of many query units a KV head (a WeDLM
// window of 9-64 rows: 33-256 units with a group of 4). The register-tiled kernel
// (attention_mma.cu) gives each warp 16 units, so every warp reads the whole K and V tile from
// shared memory: for a 32-row step at 4096 keys that is ~4 us of shared-memory bandwidth a layer
// on its own, and its two 4-warp CTAs a multiprocessor leave the mma/ldmatrix chains exposed
// (NOTES.md, "Where the rest of a 32-row forward ... goes"). Here a warpgroup owns 64 units and
// multiplies with wgmma, which reads K and V from shared memory once per 64 units, twice the
// tensor rate of mma.sync, asynchronously. A producer warp feeds a ring of K/V stages through the
// TMA engine (a tensor map over the layer's cache, boxes of whole cache blocks, 128-byte swizzled
// as wgmma reads them), so no consumer thread spends instructions on staging, and the consumers
// never meet at a CTA-wide barrier inside the loop. One CTA a multiprocessor (160 KB of shared
// memory for 128 units); a 32-row step at 4096 keys streams its K/V at ~4.3 TB/s inside the loop
// (H200, cuda_attention_bench with WEDLM_ATTN_TRACE=1). NOTES.md, "The wgmma attention round".
//
// Layout in shared memory: a "tile" is 64 rows (units or keys) x 128 dims as two 8 KB halves
// (dims 0-63, 64-127), each [64 rows][128 bytes] with 16-byte chunk c of row r at chunk c ^ (r % 8).
#include <cooperative_groups.h>
#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "backend/cuda/attention.h"
#include "backend/cuda/cache_hints.cuh"
#include "backend/cuda/cluster_merge.cuh"
#include "backend/cuda/attention_wgmma.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/fragment_softmax.cuh"
#include "backend/cuda/pdl.h"
#include "backend/cuda/shared_staging.cuh"
#include "backend/cuda/tensor_map.h"
#include "backend/cuda/tma.cuh"
#include "backend/cuda/wgmma.cuh"

namespace wedlm::cuda {

namespace {

constexpr int kDims = 128;                  // the head size this kernel takes
constexpr int kHalfBytes = 64 * 128;        // 64 rows x 64 dims
constexpr int kTileBytes = 2 * kHalfBytes;  // 64 rows x 128 dims
constexpr int kStageBytes = 2 * kTileBytes; // K and V of kKeyTile keys
constexpr int kStages = 4;
constexpr int kMergeStride = kDims + 4;     // floats a unit's row of merged outputs (fewer bank conflicts)

template <int WG>
__host__ __device__ constexpr int wgmma_shared_bytes() {
  return WG * kTileBytes + kStages * kStageBytes + 1024;  // + alignment of the swizzled tiles
}

#ifdef WEDLM_WGMMA_DEVICE
// S (64 units x 64 keys, fp32) = S * ACCUMULATE + Q (64 x 16, shared) K^T (K: 64 keys x 16,
// shared), both K-major.
template <int ACCUMULATE>
__device__ __forceinline__ void wgmma_qk(float (&s)[32], std::uint64_t q, std::uint64_t k) {
  asm volatile(
      "{\n .reg .pred p;\n setp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, 0, 0;\n}\n"
      : "+f"(s[0]), "+f"(s[1]), "+f"(s[2]), "+f"(s[3]), "+f"(s[4]), "+f"(s[5]), "+f"(s[6]), "+f"(s[7]), "+f"(s[8]), "+f"(s[9]), "+f"(s[10]), "+f"(s[11]), "+f"(s[12]), "+f"(s[13]), "+f"(s[14]), "+f"(s[15]), "+f"(s[16]), "+f"(s[17]), "+f"(s[18]), "+f"(s[19]), "+f"(s[20]), "+f"(s[21]), "+f"(s[22]), "+f"(s[23]), "+f"(s[24]), "+f"(s[25]), "+f"(s[26]), "+f"(s[27]), "+f"(s[28]), "+f"(s[29]), "+f"(s[30]), "+f"(s[31])
      : "l"(q), "l"(k), "n"(ACCUMULATE)
      : "memory");
}

// O (64 units x 128 dims, fp32) += P (64 x 16 keys, registers) V (16 keys x 128, shared, dims
// contiguous: the transposed, MN-major B operand).
__device__ __forceinline__ void wgmma_pv(float (&o)[64], const unsigned (&p)[4], std::uint64_t v) {
  asm volatile(
      "{\n .reg .pred p;\n setp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
      : "+f"(o[0]), "+f"(o[1]), "+f"(o[2]), "+f"(o[3]), "+f"(o[4]), "+f"(o[5]), "+f"(o[6]), "+f"(o[7]), "+f"(o[8]), "+f"(o[9]), "+f"(o[10]), "+f"(o[11]), "+f"(o[12]), "+f"(o[13]), "+f"(o[14]), "+f"(o[15]), "+f"(o[16]), "+f"(o[17]), "+f"(o[18]), "+f"(o[19]), "+f"(o[20]), "+f"(o[21]), "+f"(o[22]), "+f"(o[23]), "+f"(o[24]), "+f"(o[25]), "+f"(o[26]), "+f"(o[27]), "+f"(o[28]), "+f"(o[29]), "+f"(o[30]), "+f"(o[31]), "+f"(o[32]), "+f"(o[33]), "+f"(o[34]), "+f"(o[35]), "+f"(o[36]), "+f"(o[37]), "+f"(o[38]), "+f"(o[39]), "+f"(o[40]), "+f"(o[41]), "+f"(o[42]), "+f"(o[43]), "+f"(o[44]), "+f"(o[45]), "+f"(o[46]), "+f"(o[47]), "+f"(o[48]), "+f"(o[49]), "+f"(o[50]), "+f"(o[51]), "+f"(o[52]), "+f"(o[53]), "+f"(o[54]), "+f"(o[55]), "+f"(o[56]), "+f"(o[57]), "+f"(o[58]), "+f"(o[59]), "+f"(o[60]), "+f"(o[61]), "+f"(o[62]), "+f"(o[63])
      : "r"(p[0]), "r"(p[1]), "r"(p[2]), "r"(p[3]), "l"(v), "n"(1)
      : "memory");
}

// Trace slots (AttentionArgs::trace, clock64 of the CTA's multiprocessor): 0 start, 1 Q in
// shared memory (warpgroup 0), 2 + i tile i's K/V arrived (i < 8, warpgroup 0), 10 loop done,
// 11 outputs written, 12 first copy issued, 13 last copy issued, 14 the SM id, 15 globaltimer at
// start (ns).
__device__ __forceinline__ void trace_at(const AttentionArgs& a, int slot) {
  if (a.trace != nullptr) a.trace[blockIdx.x * kAttentionTraceSlots + slot] = clock64();
}

#endif

// WG consumer warpgroups (64 units each) and one producer warp. CLUSTER: a tile's key splits run
// as a thread block cluster and merge through distributed shared memory (attention_plan.h).
template <int WG, bool CLUSTER>
__global__ void __launch_bounds__(WG * 128 + 32, 1)
    attention_wgmma_kernel(AttentionArgs a, const __grid_constant__ CUtensorMap k_map,
                           const __grid_constant__ CUtensorMap v_map) {
#ifdef WEDLM_WGMMA_DEVICE
  pdl_launch_dependents();
  if (threadIdx.x == 0 && a.trace != nullptr) {
    unsigned long long now = 0;
    unsigned sm = 0;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
    a.trace[blockIdx.x * kAttentionTraceSlots + 15] = now;
    a.trace[blockIdx.x * kAttentionTraceSlots + 14] = sm;
    trace_at(a, 0);
  }
  constexpr int kM = 64 * WG, kConsumers = 4 * WG;
  extern __shared__ unsigned char wgmma_smem[];
  unsigned char* tiles = align_1024(wgmma_smem);
  __shared__ __align__(8) std::uint64_t full[kStages], empty[kStages];
  const std::uint64_t keep = l2_evict_last_policy();
  // The plan's loads keep their lines in the L2 (cache_hints.cuh): 32-row forwards 0.02-0.03 ms
  // faster on the H200.
  if (a.counts != nullptr && static_cast<int>(blockIdx.x) >= load_kept(a.counts, keep)) return;  // whole CTA (whole clusters)
  const AttnWork w = load_kept(a.work + blockIdx.x, keep);
  const AttnSequence seq = load_kept(a.sequences + w.seq, keep);
  const int group = a.num_heads / a.num_kv_heads, units = seq.rows * group;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const unsigned q_base = shared_address(tiles), stage_base = q_base + WG * kTileBytes;
  auto full_bar = [&](int s) { return shared_address(&full[s]); };
  auto empty_bar = [&](int s) { return shared_address(&empty[s]); };
  mbar_init_ring(full, empty, kStages, kConsumers);
  __syncthreads();
  const int n_tiles = (w.key_end - w.key_begin + kKeyTile - 1) / kKeyTile;

  float o[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) o[i] = 0.0f;
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;
  const int wg = warp / 4, g = lane / 4, t = lane % 4;
  const int u0 = wg * 64 + (warp % 4) * 16 + g, u1 = u0 + 8;  // this thread's two units (rows of the CTA tile)

  if (warp == kConsumers) {
    // Producer warp: K/V tiles in groups of up to kStages (the ring), one lane a TMA box (a
    // cache block's run of a tile's keys, or the whole tile for blocks of 64+ slots), the lanes
    // issuing at once: from one thread, the copies of 2 KB boxes (blocks of 16 slots) went out
    // ~200 cycles apart, 20 GB/s a multiprocessor. Keys at or past key_end (the last tile's tail)
    // are read from block 0, which holds finite numbers (the pool is zeroed when made): their
    // scores are masked, and V must not hold NaN (0 x NaN).
    const std::int32_t* table = a.tables + seq.table_offset;
    const int bs = a.block_size, box = bs < kKeyTile ? bs : kKeyTile, boxes_per_tile = kKeyTile / box;
    const int tiles_per_group = min(kStages, 32 / boxes_per_tile);
    for (int i0 = 0; i0 < n_tiles; i0 += tiles_per_group) {
      const int i = i0 + lane / boxes_per_tile, s = i % kStages, j = lane % boxes_per_tile;
      const bool active = lane < min(tiles_per_group, n_tiles - i0) * boxes_per_tile;
      int row = 0;
      if (active) {
        const int key = w.key_begin + i * kKeyTile + j * box;
        const int block = key < w.key_end ? load_kept(table + key / bs, keep) : 0;
        const int offset = key < w.key_end ? key % bs : 0;
        row = (block * a.num_kv_heads + w.kv_head) * bs + offset;
        // Keys from cache_start on are this chunk's, written by the kernel before this one;
        // earlier ones were written before the chunk began (attention_mma.cu).
        if (w.key_begin + (i + 1) * kKeyTile > seq.cache_start) pdl_wait();
        if (j == 0) {
          if (i >= kStages) mbar_wait(empty_bar(s), static_cast<unsigned>((i / kStages - 1) & 1));
          mbar_arrive_expect_tx(full_bar(s), kStageBytes);
        }
      }
      __syncwarp();  // every tile of the group expects its bytes before any copy completes
      if (active) {
        if (i0 == 0 && lane == 0) trace_at(a, 12);
        const unsigned k_dst = stage_base + static_cast<unsigned>(s * kStageBytes), v_dst = k_dst + kTileBytes;
        for (int h = 0; h < 2; ++h) {
          const unsigned at = static_cast<unsigned>(h * kHalfBytes + j * box * 128);
          tma_load(k_dst + at, k_map, h * 64, row, full_bar(s));
          tma_load(v_dst + at, v_map, h * 64, row, full_bar(s));
        }
      }
    }
    if (lane == 0) trace_at(a, 13);
  } else {
    // Consumers. Q of this warpgroup's 64 units, swizzled like a TMA box (padding units zero).
    pdl_wait();
    const int tid = threadIdx.x % 128;
    unsigned char* q_tile = tiles + wg * kTileBytes;
    const unsigned q_wg = shared_address(q_tile);
    for (int i = tid; i < 64 * 16; i += 128) {
      const int u = i / 16, c = i % 16, unit = w.unit_begin + wg * 64 + u;
      const bool valid = unit < units;
      const bf16* src = valid ? a.qkv + (seq.row_begin + unit / group) * a.qkv_stride +
                                    (w.kv_head * group + unit % group) * kDims + c * 8
                              : a.qkv;
      cp_async16(q_tile + (c / 8) * kHalfBytes + swizzled(u, c % 8), src, valid);
    }
    asm volatile("cp.async.wait_all;\n" ::: "memory");
    // Generic-proxy writes made visible to wgmma's (async-proxy) reads, then the warpgroup meets.
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    asm volatile("bar.sync %0, 128;\n" ::"r"(1 + wg) : "memory");
    if (threadIdx.x == 0) trace_at(a, 1);

    // Scores in log2 units (exp2 is one MUFU instruction); maxima go back in natural-log units.
    const float scale2 = rsqrtf(static_cast<float>(kDims)) * 1.4426950408889634f;
    const int limit0 = w.unit_begin + u0 < units ? seq.cache_start + (w.unit_begin + u0) / group : -1;
    const int limit1 = w.unit_begin + u1 < units ? seq.cache_start + (w.unit_begin + u1) / group : -1;
    auto stage_of = [&](int i) { return stage_base + static_cast<unsigned>((i % kStages) * kStageBytes); };
    const std::uint64_t q_desc = smem_desc(q_wg, 16, 1024);
    float sc[32] = {};  // (overwritten by the first k step of every tile)
    // Every wgmma's descriptor is made before the wgmma.fence of its batch and pinned there
    // (wgmma.cuh).
    using KSteps = std::uint64_t[kDims / 16];
    using VSteps = std::uint64_t[4];
    // The 16-dim k steps of a Q or K tile: the start address advances by 32 bytes inside a
    // 128-byte swizzle row, and by 8 KB to the dims' second half.
    auto k_steps_from = [&](std::uint64_t desc, KSteps& steps) {
#pragma unroll
      for (int ks = 0; ks < kDims / 16; ++ks) {
        steps[ks] = desc + static_cast<std::uint64_t>(((ks / 4) * kHalfBytes + (ks % 4) * 32) >> 4);
        pin_descriptor(steps[ks]);
      }
    };
    KSteps q_steps;
    k_steps_from(q_desc, q_steps);
    auto k_steps_of = [&](int i, KSteps& k_steps) { k_steps_from(smem_desc(stage_of(i), 16, 1024), k_steps); };
    auto v_steps_of = [&](int i, VSteps& v_steps) {
      const std::uint64_t v_desc = smem_desc(stage_of(i) + kTileBytes, kHalfBytes, 1024);
#pragma unroll
      for (int kc = 0; kc < 4; ++kc) {
        // 16 keys = two 8-row groups (1024 bytes apart); the dims' two halves are 8 KB apart.
        v_steps[kc] = v_desc + static_cast<std::uint64_t>((kc * 2048) >> 4);
        pin_descriptor(v_steps[kc]);
      }
    };
    auto scores_mma = [&](const KSteps& k_steps) {
#pragma unroll
      for (int ks = 0; ks < kDims / 16; ++ks) {
        if (ks == 0) {
          wgmma_qk<0>(sc, q_steps[ks], k_steps[ks]);  // the first k step overwrites sc
        } else {
          wgmma_qk<1>(sc, q_steps[ks], k_steps[ks]);
        }
      }
    };
    auto values_mma = [&](const VSteps& v_steps, const unsigned (&p)[4][4]) {
#pragma unroll
      for (int kc = 0; kc < 4; ++kc) wgmma_pv(o, p[kc], v_steps[kc]);
    };
    // Online softmax of tile i's scores (in sc, complete): the new running max and sum, P packed
    // as the A operand of P V (16 keys a k step, the mma.sync A fragment layout per warp), and the
    // factors by which O must be rescaled before this tile's P V is added.
    auto softmax = [&](int i, unsigned (&p)[4][4], float& alpha0, float& alpha1) {
      const int kt = w.key_begin + i * kKeyTile;
      // sc[4n + e]: key kt + 8n + 2t + (e & 1) of unit u0 (e < 2) or u1 (e >= 2). sc (the
      // scores' accumulator registers) is only read: the probabilities go to x.
      float x[32];
      const int last0 = min(limit0, w.key_end - 1), last1 = min(limit1, w.key_end - 1);
      if (kt + kKeyTile - 1 <= last0 && kt + kKeyTile - 1 <= last1) {
#pragma unroll
        for (int e = 0; e < 32; ++e) x[e] = sc[e] * scale2;
      } else {
#pragma unroll
        for (int n = 0; n < 8; ++n) {
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int key = kt + n * 8 + 2 * t + e;
            x[4 * n + e] = key <= last0 ? sc[4 * n + e] * scale2 : -INFINITY;
            x[4 * n + 2 + e] = key <= last1 ? sc[4 * n + 2 + e] * scale2 : -INFINITY;
          }
        }
      }
      float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
      for (int n = 0; n < 8; ++n) {
        mx0 = fmaxf(mx0, fmaxf(x[4 * n], x[4 * n + 1]));
        mx1 = fmaxf(mx1, fmaxf(x[4 * n + 2], x[4 * n + 3]));
      }
      mx0 = quad_max(mx0);
      mx1 = quad_max(mx1);
      const float new0 = fmaxf(m0, mx0), new1 = fmaxf(m1, mx1);
      // A unit with no visible key yet keeps m = -inf: its probabilities are 0 and nothing rescales.
      const float base0 = new0 == -INFINITY ? 0.0f : new0, base1 = new1 == -INFINITY ? 0.0f : new1;
      alpha0 = exp2f(m0 - base0);
      alpha1 = exp2f(m1 - base1);
      float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
      for (int n = 0; n < 8; ++n) {
        x[4 * n] = exp2f(x[4 * n] - base0);
        x[4 * n + 1] = exp2f(x[4 * n + 1] - base0);
        x[4 * n + 2] = exp2f(x[4 * n + 2] - base1);
        x[4 * n + 3] = exp2f(x[4 * n + 3] - base1);
        sum0 += x[4 * n] + x[4 * n + 1];
        sum1 += x[4 * n + 2] + x[4 * n + 3];
      }
      sum0 = quad_sum(sum0);
      sum1 = quad_sum(sum1);
      l0 = l0 * alpha0 + sum0;
      l1 = l1 * alpha1 + sum1;
      m0 = new0;
      m1 = new1;
#pragma unroll
      for (int kc = 0; kc < 4; ++kc) {
        p[kc][0] = pack_bf16x2(x[8 * kc], x[8 * kc + 1]);
        p[kc][1] = pack_bf16x2(x[8 * kc + 2], x[8 * kc + 3]);
        p[kc][2] = pack_bf16x2(x[8 * kc + 4], x[8 * kc + 5]);
        p[kc][3] = pack_bf16x2(x[8 * kc + 6], x[8 * kc + 7]);
      }
    };
    auto rescale = [&](float alpha0, float alpha1) {
#pragma unroll
      for (int n = 0; n < 16; ++n) {
        o[4 * n] *= alpha0;
        o[4 * n + 1] *= alpha0;
        o[4 * n + 2] *= alpha1;
        o[4 * n + 3] *= alpha1;
      }
    };
    auto release = [&](int i) {
      __syncwarp();
      if (lane == 0) mbar_arrive(empty_bar(i % kStages));
    };
    auto wait_full = [&](int i) { mbar_wait(full_bar(i % kStages), static_cast<unsigned>((i / kStages) & 1)); };

    unsigned p[4][4];
    float alpha0, alpha1;
    KSteps k_steps;
    VSteps v_steps;
    for (int i = 0; i < n_tiles; ++i) {
      wait_full(i);
      if (threadIdx.x == 0 && i < 8) trace_at(a, 2 + i);
      k_steps_of(i, k_steps);
      fence_registers(sc);
      wgmma_fence();
      scores_mma(k_steps);
      wgmma_commit();
      wgmma_wait<0>();
      fence_registers(sc);
      softmax(i, p, alpha0, alpha1);
      rescale(alpha0, alpha1);
      v_steps_of(i, v_steps);
      fence_registers(o);
      wgmma_fence();
      values_mma(v_steps, p);
      wgmma_commit();
      wgmma_wait<0>();
      fence_registers(o);
      release(i);
    }
    if (threadIdx.x == 0) trace_at(a, 10);
  }

  if constexpr (CLUSTER) {
    // Every split's unnormalized output and statistics into its own shared memory (the stages
    // are free once every consumer is past its last tile), then rank r merges units
    // [r * kM / splits, (r + 1) * kM / splits) from all ranks.
    namespace cg = cooperative_groups;
    cg::cluster_group cluster = cg::this_cluster();
    pdl_wait();  // (long satisfied) every thread writes `out` below, the producer warp's too
    __syncthreads();
    float* o_s = reinterpret_cast<float*>(tiles + WG * kTileBytes);  // [kM][kMergeStride]
    float* ml_s = o_s + kM * kMergeStride;                          // [kM][2]: max (log2 units), sum
    __shared__ float weight_s[kM][kMaxWgmmaCluster], sums_s[kM][kMaxWgmmaCluster];
    __shared__ float inv_total_s[kM];
    if (warp < kConsumers) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int u = half == 0 ? u0 : u1;
#pragma unroll
        for (int n = 0; n < 16; ++n) {
          *reinterpret_cast<float2*>(o_s + u * kMergeStride + n * 8 + 2 * t) = make_float2(o[4 * n + 2 * half], o[4 * n + 2 * half + 1]);
        }
        if (t == 0) {
          ml_s[u * 2] = half == 0 ? m0 : m1;
          ml_s[u * 2 + 1] = half == 0 ? l0 : l1;
        }
      }
    }
    const ClusterShare share = cluster_merge_weights(cluster, ml_s, kM, weight_s, sums_s, inv_total_s);
    cluster_merge_out(cluster, share, o_s, kMergeStride, kDims, weight_s, inv_total_s, a, seq, w);
    if (threadIdx.x == 0) trace_at(a, 11);
    return;
  }

  if (warp >= kConsumers) return;
  // Epilogue: units u0 and u1, dims 8n + 2t, +1 (pairs: one 4- or 8-byte store each).
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int u = half == 0 ? u0 : u1, unit = w.unit_begin + u;
    if (unit >= units) continue;  // a padding unit: nothing reads its output or slot
    const float l = half == 0 ? l0 : l1, m = half == 0 ? m0 : m1;
    if (w.partial < 0) {
      bf16* dst = a.out + (seq.row_begin + unit / group) * a.out_stride + (w.kv_head * group + unit % group) * kDims;
      const float inv = 1.0f / l;
#pragma unroll
      for (int n = 0; n < 16; ++n) {
        *reinterpret_cast<__nv_bfloat162*>(dst + n * 8 + 2 * t) =
            __floats2bfloat162_rn(o[4 * n + 2 * half] * inv, o[4 * n + 2 * half + 1] * inv);
      }
    } else {
      const std::int64_t slot = static_cast<std::int64_t>(w.partial) * kM + u;
      float* po = a.partial_o + slot * kDims;
#pragma unroll
      for (int n = 0; n < 16; ++n) {
        *reinterpret_cast<float2*>(po + n * 8 + 2 * t) = make_float2(o[4 * n + 2 * half], o[4 * n + 2 * half + 1]);
      }
      if (t == 0) {
        a.partial_ml[slot * 2] = m * 0.6931471805599453f;  // -inf stays -inf
        a.partial_ml[slot * 2 + 1] = l;
      }
    }
  }
  if (threadIdx.x == 0) trace_at(a, 11);
#else
  __trap();  // built without sm_90a: sm90a_kernels_run() is false and nothing launches this
#endif
}

template <int WG, bool CLUSTER>
void launch_kernel(const AttentionArgs& a, cudaStream_t stream) {
  constexpr int bytes = wgmma_shared_bytes<WG>();
  static_assert(kStages * kStageBytes >= (64 * WG) * (kMergeStride + 2) * 4, "a cluster's outputs fit the stages");
  auto kernel = attention_wgmma_kernel<WG, CLUSTER>;
  static bool configured = false;
  if (!configured) {
    WEDLM_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    if (CLUSTER) WEDLM_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
    configured = true;
  }
  const std::int64_t rows = a.cache_rows;
  const unsigned box = static_cast<unsigned>(a.block_size < kKeyTile ? a.block_size : kKeyTile);
  const CUtensorMap k_map = cached_bf16_tensor_map(a.k_cache, rows, kDims, kDims, box);
  const CUtensorMap v_map = cached_bf16_tensor_map(a.v_cache, rows, kDims, kDims, box);
  const int cluster = CLUSTER ? a.cluster : 1;
  const unsigned grid = static_cast<unsigned>((a.work_count + cluster - 1) / cluster * cluster);
  launch_clustered(kernel, grid, WG * 128 + 32, bytes, static_cast<unsigned>(cluster), stream, a, k_map, v_map);
}

template <int WG>
void launch_wg(const AttentionArgs& a, cudaStream_t stream) {
  if (a.cluster > 1) return launch_kernel<WG, true>(a, stream);
  launch_kernel<WG, false>(a, stream);
}

}  // namespace

ClusterCapacity attention_wgmma_cluster_capacity(int m_tile) {
  auto query = [](auto kernel, int bytes, int threads) {
    ClusterCapacity c;
    if (cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1) != cudaSuccess) {
      (void)cudaGetLastError();
    }
    for (int size = 2; size <= kMaxWgmmaCluster; ++size) {
      c.active[size] = max_active_clusters(kernel, static_cast<unsigned>(threads), bytes, static_cast<unsigned>(size));
    }
    const char* log = std::getenv("WEDLM_CUDA_ATTN_LOG");
    if (log != nullptr && *log == '1') {
      std::fprintf(stderr, "wgmma attention clusters at once (%d threads), sizes 2-16:", threads);
      for (int size = 2; size <= kMaxWgmmaCluster; ++size) std::fprintf(stderr, " %d", c.active[size]);
      std::fprintf(stderr, "\n");
    }
    return c;
  };
  static const ClusterCapacity one = query(attention_wgmma_kernel<1, true>, wgmma_shared_bytes<1>(), 160);
  static const ClusterCapacity two = query(attention_wgmma_kernel<2, true>, wgmma_shared_bytes<2>(), 288);
  return m_tile == 64 ? one : two;
}

void launch_attention_wgmma(const AttentionArgs& a, cudaStream_t stream) {
  if (a.m_tile == 64) return launch_wg<1>(a, stream);
  launch_wg<2>(a, stream);
}

}  // namespace wedlm::cuda
