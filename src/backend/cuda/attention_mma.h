#pragma once
#include "backend/cuda/attention.h"

namespace wedlm::cuda {

// The register-tiled (mma.sync) attention kernel for the same work items as launch_attention's
// WMMA kernel: m_tile 16 runs one warp per CTA, m_tile 64 four; the register-tiled kernel also
// takes m_tile 128 (eight warps).
void launch_attention_mma(const AttentionArgs& args, cudaStream_t stream);

// The largest cluster of split CTAs (a power of two up to kMaxAttentionCluster, or 1) whose
// blocks fit this GPU at once for heads of `head_dim`: a partitioned GPU may have too few
// multiprocessors to a cluster. Queried once per padded head size.
int attention_max_cluster(int head_dim);

}  // namespace wedlm::cuda
