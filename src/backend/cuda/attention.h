#pragma once
// Paged attention on the GPU: K/V scatter into the cache, then one flash-attention kernel for
// prefill and decode alike. A CTA owns one sequence, one KV head and a tile of M "query units"
// (unit u = query row u / group, query head kv_head * group + u % group), so the K/V bytes of a
// GQA group are read once for all its query heads; long key ranges are split across CTAs
// (flash-decoding) and merged by a second kernel.
#include <cstdint>

#include "backend/cuda/kernels.h"

namespace wedlm::cuda {

struct AttnSequence {
  std::int32_t row_begin, rows, cache_start, table_offset;
};

// Keys [key_begin, key_end) of one tile. partial < 0: the item covers every key its rows need
// and writes `out` directly; otherwise it writes partial slot `partial` for the combine kernel.
struct AttnWork {
  std::int32_t seq, kv_head, unit_begin, key_begin, key_end, partial;
};

// Merges `splits` partial slots starting at `partial_base` for one tile.
struct AttnCombine {
  std::int32_t seq, kv_head, unit_begin, partial_base, splits;
};

struct AttentionArgs {
  const bf16* qkv = nullptr;
  std::int64_t qkv_stride = 0;
  const bf16* k_cache = nullptr;  // this layer's [block][kv_head][slot][head_dim]
  const bf16* v_cache = nullptr;
  std::int64_t cache_rows = 0;  // [block][kv_head][slot] rows of head_dim in each of k_cache, v_cache
  int num_heads = 0, num_kv_heads = 0, head_dim = 0, block_size = 0;
  const AttnSequence* sequences = nullptr;
  const std::int32_t* tables = nullptr;
  const AttnWork* work = nullptr;
  int work_count = 0;
  const AttnCombine* combine = nullptr;
  int combine_count = 0;
  // Units of a combine item that need merging (at most m_tile): the combine kernel's blocks walk
  // combine_count x combine_units (item, unit) pairs.
  int combine_units = 0;
  // Blocks of the combine grid (at most the pairs); 0: one per pair. A graph's grid is sized
  // for its largest plan, and empty blocks are not free (17k of them, the m_tile-wide grid of a
  // 32-row step's capacity, cost ~17 us a layer), so it is capped and the blocks loop.
  int combine_blocks = 0;
  float* partial_o = nullptr;   // [slot][m_tile][padded head_dim]
  float* partial_ml = nullptr;  // [slot][m_tile][2]: running max, running sum
  bf16* out = nullptr;
  std::int64_t out_stride = 0;
  int m_tile = 64;  // 16, 64 or 128 query units per CTA
  // > 1: consecutive work items are the splits of one tile, launched as a cluster of this many
  // blocks that merge in distributed shared memory (no combine kernel; attention_plan.h).
  int cluster = 1;
  // The plan's tiles are for the warpgroup-MMA kernel (attention_wgmma.h).
  bool wgmma = false;
  // Diagnostics (cuda_attention_bench): where non-null, the warpgroup-MMA kernel writes
  // kAttentionTraceSlots SM clock stamps a CTA (attention_wgmma.cu says which).
  unsigned long long* trace = nullptr;
  // Null for an eager launch. In a CUDA graph the grid is sized for the largest plan the graph
  // may replay (work_count, combine_count are capacities) and the step's real counts are read
  // here, on the device: {work items, combine items, combine units}. CTAs past them exit at once.
  const std::int32_t* counts = nullptr;
};

constexpr int kAttentionTraceSlots = 16;

// Largest head_dim the attention kernel takes (shared memory is sized from it at run time).
constexpr int kMaxHeadDim = 256;
constexpr int kKeyTile = 64;
// Decode CTAs (64 units, head_dim <= 128) a multiprocessor holds at once: the plan splits keys
// until this many per multiprocessor are busy, and no further.
constexpr int kAttentionCtasPerSm = 2;
// Largest cluster of split CTAs a plan forms (the portable cluster size). H200, 32-row steps:
// clusters of 8 (512 keys) 5.27 -> 5.18 ms; of 16 (4096 keys) 5.65 -> 6.24 ms, so not used.
constexpr int kMaxAttentionCluster = 8;
// The warpgroup-MMA kernel (one CTA a multiprocessor) forms clusters of any size up to 16
// (non-portable past 8: where the GPU's processor clusters hold that many of its CTAs at once).
constexpr int kMaxWgmmaCluster = 16;

// Clusters of split CTAs the GPU runs at once, by cluster size (active[size], sizes 2-16; 0:
// such a cluster does not fit). A plan forms clusters only where all of them run in one wave.
// Unless measured, clusters of up to 8 are taken to fit and larger ones not to.
struct ClusterCapacity {
  static constexpr int kLargest = 16;
  int active[kLargest + 1] = {0, 0, 1 << 30, 1 << 30, 1 << 30, 1 << 30, 1 << 30, 1 << 30, 1 << 30};
  int of(int cluster) const { return cluster >= 2 && cluster <= kLargest ? active[cluster] : 0; }
};

// Writes row r's k and v to physical slot row_slot[r] (block * block_size + offset).
void launch_kv_scatter(const bf16* qkv, std::int64_t qkv_stride, std::int64_t rows, const std::int32_t* row_slot,
                       int num_heads, int num_kv_heads, int head_dim, int block_size, bf16* k_cache, bf16* v_cache,
                       cudaStream_t stream);

void launch_attention(const AttentionArgs& args, cudaStream_t stream);
// launch_attention in its two parts: the tiles, then (split plans without clusters) the combine
// kernel; separate for per-op timing.
void launch_attention_tiles(const AttentionArgs& args, cudaStream_t stream);
void launch_attention_combine(const AttentionArgs& args, cudaStream_t stream);
// Whether launch_attention runs the WMMA kernel (WEDLM_CUDA_WMMA_ATTENTION=1) rather than the
// register-tiled one; the plan picks its tile size accordingly.
bool attention_uses_wmma();

#ifdef __CUDACC__
#define WEDLM_HOST_DEVICE __host__ __device__
#else
#define WEDLM_HOST_DEVICE
#endif

// The padded head size the partial buffers use (WMMA works on 16-wide fragments).
WEDLM_HOST_DEVICE inline int padded_head_dim(int head_dim) { return (head_dim + 15) / 16 * 16; }

}  // namespace wedlm::cuda
