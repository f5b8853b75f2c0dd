#pragma once
#include "backend/cuda/attention.h"

namespace wedlm::cuda {

// The warpgroup-MMA decode attention kernel (attention_wgmma.cu) for the same work items as
// launch_attention_mma: m_tile 64 (one consumer warpgroup) or 128 (two), head_dim 128, K/V read
// through TMA tensor maps over the layer's cache (AttentionArgs::cache_rows rows of 128).
// Launch only where sm90a_kernels_run() (sm90a.h).
void launch_attention_wgmma(const AttentionArgs& args, cudaStream_t stream);

// Clusters of split CTAs of each size that run at once for tiles of m_tile (64 or 128) units.
ClusterCapacity attention_wgmma_cluster_capacity(int m_tile);

}  // namespace wedlm::cuda
