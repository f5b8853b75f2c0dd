#pragma once
#include "backend/cuda/attention.h"

namespace wedlm::cuda {

// The register-tiled (mma.sync) attention kernel for the same work items as launch_attention's
// WMMA kernel: m_tile 16 runs one warp per CTA, m_tile 64 four; the register-tiled kernel also
// takes m_tile 128 (eight warps).
void launch_attention_mma(const AttentionArgs& args, cudaStream_t stream);

// How many clusters of split CTAs of each size run on this GPU at once for heads of `head_dim`
// (cudaOccupancyMaxActiveClusters; a partitioned GPU may fit none). Queried once per padded
// head size; WEDLM_CUDA_ATTN_LOG=1 prints it (H200: 132 of 2, 62 of 4, 30 of 8 at head_dim 128).
ClusterCapacity attention_cluster_capacity(int head_dim);

}  // namespace wedlm::cuda
