#pragma once
// The merge of a tile's key splits run as a thread block cluster (attention_plan.h): every rank
// left its unnormalized output and its statistics in its own shared memory; each rank merges a
// share of the units, reading all ranks through distributed shared memory.
#include <cooperative_groups.h>
#include <cuda_bf16.h>

#include <cmath>

#include "backend/cuda/attention.h"

namespace wedlm::cuda {

// This rank's share of a tile's `units` units: [first, first + per) of `splits` ranks (shares
// differ by at most one unit where `splits` does not divide `units`).
struct ClusterShare {
  int splits, first, per;
};

// Called by every thread of every rank once each rank's statistics are in `ml` ([unit][2]:
// maximum in log2 units, -inf where the rank saw no key of the unit; sum): waits for the
// cluster, then for this rank's units sets weight[u][k] = exp2(m_k - max over ranks) and
// inv_total[u] = 1 / the weighted sum of the ranks' sums, and syncs the block. `sums` is
// scratch of weight's shape. A thread a (unit, rank) pair reads the statistics, so that they
// arrive in one distributed-shared-memory round trip: a thread a unit walking the ranks waited
// for each remote load in turn (~16 of them, ~5k cycles of a 512-key step's merge, H200).
template <int MAX_SPLITS>
__device__ __forceinline__ ClusterShare cluster_merge_weights(cooperative_groups::cluster_group& cluster, float* ml,
                                                              int units, float (*weight)[MAX_SPLITS],
                                                              float (*sums)[MAX_SPLITS], float* inv_total) {
  cluster.sync();
  const int splits = static_cast<int>(cluster.num_blocks()), rank = static_cast<int>(cluster.block_rank());
  const int first = rank * units / splits, per = (rank + 1) * units / splits - first;
  for (int i = static_cast<int>(threadIdx.x); i < per * splits; i += static_cast<int>(blockDim.x)) {
    const int u = first + i / splits, k = i % splits;
    const float2 stats = *reinterpret_cast<const float2*>(cluster.map_shared_rank(ml, k) + u * 2);
    weight[u][k] = stats.x;
    sums[u][k] = stats.y;
  }
  __syncthreads();
  for (int u = first + static_cast<int>(threadIdx.x); u < first + per; u += static_cast<int>(blockDim.x)) {
    float mx = -INFINITY;
    for (int k = 0; k < splits; ++k) mx = fmaxf(mx, weight[u][k]);
    float total = 0.0f;
    for (int k = 0; k < splits; ++k) {
      const float wk = weight[u][k] == -INFINITY ? 0.0f : exp2f(weight[u][k] - mx);
      weight[u][k] = wk;
      total += wk * sums[u][k];
    }
    inv_total[u] = 1.0f / total;
  }
  __syncthreads();
  return {splits, first, per};
}

// After cluster_merge_weights: this rank's share of the tile's units merged over every rank's
// `o` (its shared memory, [unit][stride] floats, d columns, d even) into bf16 `a.out`, padding
// units skipped, then the cluster barrier that keeps each rank's shared memory alive until all
// have read it. Every rank's float2 of a column pair is loaded before the first is used.
template <int MAX_SPLITS>
__device__ __forceinline__ void cluster_merge_out(cooperative_groups::cluster_group& cluster, const ClusterShare& share,
                                                  const float* o, int stride, int d, const float (*weight)[MAX_SPLITS],
                                                  const float* inv_total, const AttentionArgs& a,
                                                  const AttnSequence& seq, const AttnWork& w) {
  const int group = a.num_heads / a.num_kv_heads, units = seq.rows * group;
  for (int i = static_cast<int>(threadIdx.x); i < share.per * (d / 2); i += static_cast<int>(blockDim.x)) {
    const int u = share.first + i / (d / 2), col = (i % (d / 2)) * 2, unit = w.unit_begin + u;
    if (unit >= units) continue;  // a padding unit
    float2 v[MAX_SPLITS];
#pragma unroll
    for (int k = 0; k < MAX_SPLITS; ++k) {
      if (k < share.splits) v[k] = *reinterpret_cast<const float2*>(cluster.map_shared_rank(o + u * stride + col, k));
    }
    float2 acc = make_float2(0.0f, 0.0f);
#pragma unroll
    for (int k = 0; k < MAX_SPLITS; ++k) {
      if (k < share.splits) {
        acc.x += weight[u][k] * v[k].x;
        acc.y += weight[u][k] * v[k].y;
      }
    }
    *reinterpret_cast<__nv_bfloat162*>(a.out + (seq.row_begin + unit / group) * a.out_stride +
                                       (w.kv_head * group + unit % group) * d + col) =
        __floats2bfloat162_rn(acc.x * inv_total[u], acc.y * inv_total[u]);
  }
  cluster.sync();
}

}  // namespace wedlm::cuda
