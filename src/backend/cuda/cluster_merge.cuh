#pragma once
// The merge of a tile's key splits run as a thread block cluster (attention_plan.h): every rank
// left its unnormalized output and its statistics in its own shared memory; each rank merges a
// share of the units, reading all ranks through distributed shared memory.
#include <cooperative_groups.h>

#include <cmath>

namespace wedlm::cuda {

// Weights of units [first, first + per): weight[u][k] = exp2(m_k - max over ranks) for rank k's
// maximum m_k (log2 units; -inf: the rank saw no key of the unit), inv_total[u] = 1 / the
// weighted sum of the ranks' sums. ml: [unit][2] (maximum, sum) in every rank's shared memory.
template <int MAX_SPLITS>
__device__ __forceinline__ void cluster_split_weights(cooperative_groups::cluster_group& cluster, float* ml, int first,
                                                      int per, float (*weight)[MAX_SPLITS], float* inv_total) {
  const int splits = static_cast<int>(cluster.num_blocks());
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
}

}  // namespace wedlm::cuda
