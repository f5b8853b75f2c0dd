#pragma once
// The merge of a tile's key splits run as a thread block cluster (attention_plan.h): every rank
// left its unnormalized output and its statistics in its own shared memory; each rank merges a
// share of the units, reading all ranks through distributed shared memory.
#include <cooperative_groups.h>

#include <cmath>

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

// sum over ranks k < splits of weight[k] * (rank k's value at `local`, a float2 of its shared
// memory): every rank's load issued before the first is used.
template <int MAX_SPLITS>
__device__ __forceinline__ float2 cluster_weighted_sum(cooperative_groups::cluster_group& cluster, const float* local,
                                                       int splits, const float* weight) {
  float2 v[MAX_SPLITS];
#pragma unroll
  for (int k = 0; k < MAX_SPLITS; ++k) {
    if (k < splits) v[k] = *reinterpret_cast<const float2*>(cluster.map_shared_rank(local, k));
  }
  float2 acc = make_float2(0.0f, 0.0f);
#pragma unroll
  for (int k = 0; k < MAX_SPLITS; ++k) {
    if (k < splits) {
      acc.x += weight[k] * v[k].x;
      acc.y += weight[k] * v[k].y;
    }
  }
  return acc;
}

}  // namespace wedlm::cuda
