#pragma once
// Host-side planning of one attention call: which CTA covers which sequence, KV head, unit tile
// and key range, where each row's K/V goes, packed into one int32 array that is uploaded once
// per forward (every layer of a forward uses the same plan).
#include <cstdint>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/attention.h"

namespace wedlm::cuda {

struct AttentionPlan {
  int m_tile = 64;
  int partial_slots = 0;  // partial results the split work items write
  std::int64_t rows = 0;  // rows of the batch (row_slot entries)
  // One int32 array: sequences | tables | work | combine | row_slot; offsets in int32 units.
  std::vector<std::int32_t> packed;
  std::int64_t sequences_at = 0, tables_at = 0, work_at = 0, combine_at = 0, row_slot_at = 0;
  int work_count = 0, combine_count = 0;
  // Units a combine item covers at most (its tile's real units): the combine grid is
  // combine_count x combine_units blocks, not combine_count x m_tile.
  int combine_units = 0;
  // > 1: every tile splits its keys `cluster` ways and the splits of a tile run as one thread
  // block cluster (consecutive work items) that merges its partial results through distributed
  // shared memory: no partial slots, no combine items, no combine kernel. The register-tiled
  // kernel takes powers of two up to 8, the warpgroup-MMA kernel any size up to 16.
  int cluster = 1;
  // Tiles for the warpgroup-MMA kernel (attention_wgmma.h): one CTA a multiprocessor.
  bool wgmma = false;
  // (Sequence, unit tile) pairs x KV heads: the tiles before splitting.
  int tile_heads = 0;
};

// The most work items a plan with this many tile_heads, of this kernel, with this cluster size,
// can have on a GPU of sm_count multiprocessors. Without clusters each tile splits at most
// max(1, floor(per_sm sm_count / tile_heads)) ways (per_sm: the CTAs of the kernel a
// multiprocessor holds), so at most max(tile_heads, per_sm sm_count); with clusters every tile
// splits exactly `cluster` ways. A recorded graph's grid is sized by it (its key holds
// tile_heads and cluster): every block past a step's work still has to be scheduled, on a
// multiprocessor it has to itself for the warpgroup-MMA kernel, and spare clusters past the
// GPU's capacity would run as a second wave.
int attention_work_capacity(int tile_heads, bool wgmma, int sm_count, int cluster);

// Given (non-null) to plan_attention where the warpgroup-MMA decode kernel can run (an sm_90a
// build on a compute capability 9.0 GPU that encodes tensor maps): what of its clusters fits.
struct WgmmaAttention {
  ClusterCapacity clusters64, clusters128;  // tiles of 64 / 128 units
};

// Whether plan_attention gives a tile of `max_units` query units (the most of any sequence) to
// the warpgroup-MMA kernel: head_dim 128, cache blocks whose slots make whole TMA boxes of a
// 64-key tile (8, 16, 32 or a multiple of 64), decode steps of 33-256 units (WEDLM_CUDA_WGMMA_ATTENTION
// =0 never, =1 only 65-256).
bool wgmma_takes(std::int64_t max_units, std::int64_t head_dim, std::int64_t block_size);

// `rows` is the number of rows of the batch; `sm_count` sizes the key splits so that short
// batches still fill the GPU; `clusters` says how many clusters of split CTAs of each size run
// at once (attention_cluster_capacity: what fits the GPU).
AttentionPlan plan_attention(std::span<const AttentionSequence> sequences, std::int64_t rows, const AttentionShape& shape,
                             const KvCacheShape& cache, int sm_count, const ClusterCapacity& clusters = {},
                             const WgmmaAttention* wgmma = nullptr);

}  // namespace wedlm::cuda
