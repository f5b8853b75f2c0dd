#pragma once
// The merge of a tile's key splits run as a thread block cluster (attention_plan.h): every rank
// left its unnormalized output and its statistics in its own shared memory; each rank merges a
// share of the units, reading all ranks through distributed shared memory.
#include <cooperative_groups.h>

#include <cmath>

namespace wedlm::cuda {

// This rank's share of a tile's `units` units: [first, first + per) of `splits` ranks.
struct ClusterShare {
  int splits, first, per;
};

// Called by every thread of every rank once each rank's statistics are in `ml` ([unit][2]:
// maximum in log2 units, -inf where the rank saw no key of the unit; sum): waits for the
// cluster, then for this rank's units sets weight[u][k] = exp2(m_k - max over ranks) and
// inv_total[u] = 1 / the weighted sum of the ranks' sums, and syncs the block.
template <int MAX_SPLITS>
__device__ __forceinline__ ClusterShare cluster_merge_weights(cooperative_groups::cluster_group& cluster, float* ml,
                                                              int units, float (*weight)[MAX_SPLITS], float* inv_total) {
  cluster.sync();
  const int splits = static_cast<int>(cluster.num_blocks()), per = units / splits;
  const int first = static_cast<int>(cluster.block_rank()) * per;
  for (int u = first + static_cast<int>(threadIdx.x); u < first + per; u += static_cast<int>(blockDim.x)) {
    float mx = -INFINITY;
    for (int k = 0; k < splits; ++k) mx = fmaxf(mx, cluster.map_shared_rank(ml, k)[u * 2]);
    float total = 0.0f;
    for (int k = 0; k < splits; ++k) {
      const float* rank_ml = cluster.map_shared_rank(ml, k);
      const float wk = rank_ml[u * 2] == -INFINITY ? 0.0f : exp2f(rank_ml[u * 2] - mx);
      weight[u][k] = wk;
      total += wk * rank_ml[u * 2 + 1];
    }
    inv_total[u] = 1.0f / total;
  }
  __syncthreads();
  return {splits, first, per};
}

}  // namespace wedlm::cuda
