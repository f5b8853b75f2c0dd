#pragma once
#include "backend/cuda/attention.h"

namespace wedlm::cuda {

// The register-tiled (mma.sync) attention kernel for the same work items as launch_attention's
// WMMA kernel: m_tile 16 runs one warp per CTA, m_tile 64 four; the register-tiled kernel also
// takes m_tile 128 (eight warps).
void launch_attention_mma(const AttentionArgs& args, cudaStream_t stream);

}  // namespace wedlm::cuda
