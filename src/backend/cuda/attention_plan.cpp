#include "backend/cuda/attention_plan.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "util/error.h"

namespace wedlm::cuda {

namespace {

template <typename T>
void append(std::vector<std::int32_t>& packed, const std::vector<T>& items) {
  static_assert(sizeof(T) % sizeof(std::int32_t) == 0);
  const std::size_t at = packed.size();
  packed.resize(at + items.size() * sizeof(T) / sizeof(std::int32_t));
  if (!items.empty()) std::memcpy(packed.data() + at, items.data(), items.size() * sizeof(T));
}

// Keys per split are at least this many (one key tile). Measured on an H100 (one-row forward,
// 512 cached keys): 64 -> 6.15 ms, 128 -> 6.24, 256 -> 6.36; at 4096 keys the split count is
// bounded by the CTAs that fit at once, and 64/128/256 gave 6.45/6.42/6.61 ms.
constexpr std::int64_t kMinSplitKeys = 64;

// WEDLM_CUDA_ATTN_CLUSTER=0 keeps the combine kernel (A/B timing); the WMMA kernel has no
// cluster variant.
bool attention_clusters_enabled() {
  static const bool enabled = [] {
    const char* env = std::getenv("WEDLM_CUDA_ATTN_CLUSTER");
    return !(env != nullptr && *env == '0');
  }();
  return enabled && !attention_uses_wmma();
}

// WEDLM_CUDA_WGMMA_ATTENTION: 0 off, 1 tiles of 128 units only, 2 (default) also tiles of 64, 3
// tiles of 64 always (A/B timing).
// H200, 16-row steps (64 units): 4.98 -> 4.81 ms at 512 keys, 5.35 -> 5.13 at 4096.
int wgmma_mode() {
  static const int mode = [] {
    const char* env = std::getenv("WEDLM_CUDA_WGMMA_ATTENTION");
    return env == nullptr || *env == '\0' ? 2 : std::atoi(env);
  }();
  return mode;
}

// WEDLM_CUDA_ATTN_MAX_SPLITS=n caps the key splits of a tile (A/B timing of split counts).
std::int64_t max_splits() {
  static const std::int64_t cap = [] {
    const char* env = std::getenv("WEDLM_CUDA_ATTN_MAX_SPLITS");
    const long v = env != nullptr ? std::atol(env) : 0;
    return v > 0 ? static_cast<std::int64_t>(v) : std::int64_t{1} << 30;
  }();
  return cap;
}

}  // namespace

int attention_work_capacity(int tile_heads, bool wgmma, int sm_count, int cluster) {
  if (cluster > 1) return tile_heads * cluster;
  return std::max(tile_heads, (wgmma ? 1 : kAttentionCtasPerSm) * sm_count);
}

bool wgmma_takes(std::int64_t max_units, std::int64_t head_dim, std::int64_t block_size) {
  const int mode = wgmma_mode();
  const bool boxes = block_size % 8 == 0 && (64 % block_size == 0 || block_size % 64 == 0);
  return mode != 0 && head_dim == 128 && boxes && max_units <= 256 && max_units > (mode == 2 ? 32 : 64);
}

AttentionPlan plan_attention(std::span<const AttentionSequence> sequences, std::int64_t rows, const AttentionShape& s,
                             const KvCacheShape& cache, int sm_count, const ClusterCapacity& clusters,
                             const WgmmaAttention* wgmma) {
  if (s.num_heads % s.num_kv_heads != 0) fail("attention: {} heads are not a multiple of {} KV heads", s.num_heads, s.num_kv_heads);
  if (s.head_dim % 8 != 0 || s.head_dim > kMaxHeadDim) {
    fail("the CUDA attention kernel needs head_dim a multiple of 8 and at most {}, got {}", kMaxHeadDim, s.head_dim);
  }
  const std::int64_t bs = cache.block_size;
  const std::int64_t group = s.num_heads / s.num_kv_heads;
  AttentionPlan plan;
  plan.rows = rows;
  std::vector<AttnSequence> seqs;
  std::vector<std::int32_t> tables, row_slot(static_cast<std::size_t>(rows), -1);
  std::int64_t max_units = 0;
  for (const AttentionSequence& seq : sequences) {
    const std::int64_t end = seq.cache_start + seq.rows;
    if (seq.cache_start < 0 || end > static_cast<std::int64_t>(seq.block_table.size()) * bs) {
      fail("KV cache overflow: slots {}..{} exceed the sequence's {} blocks of {} slots", seq.cache_start, end - 1,
           seq.block_table.size(), bs);
    }
    if (seq.row_begin < 0 || seq.row_begin + seq.rows > rows) fail("internal: attention rows outside the batch");
    for (std::int32_t block : seq.block_table) {
      if (block < 0 || block >= cache.num_blocks) fail("internal: KV block {} is outside the pool", block);
    }
    for (std::int64_t r = 0; r < seq.rows; ++r) {
      const std::int64_t slot = seq.cache_start + r;
      row_slot[static_cast<std::size_t>(seq.row_begin + r)] =
          static_cast<std::int32_t>(seq.block_table[static_cast<std::size_t>(slot / bs)] * bs + slot % bs);
    }
    seqs.push_back({static_cast<std::int32_t>(seq.row_begin), static_cast<std::int32_t>(seq.rows),
                    static_cast<std::int32_t>(seq.cache_start), static_cast<std::int32_t>(tables.size())});
    tables.insert(tables.end(), seq.block_table.begin(), seq.block_table.end());
    max_units = std::max(max_units, seq.rows * group);
  }
  // The register-tiled kernel always takes 64-unit tiles (4 warps): for a decode row of a few
  // units, three warps only help stage K/V, which is what bounds that case (a 1-warp CTA of
  // 16 units measured 63 us a layer at 4096 keys against 38 us for the 4-warp WMMA kernel).
  // Prefill-sized sequences (more units than a 64-row chunk has) take 128-unit tiles (8 warps):
  // each K/V tile is staged once for twice the rows (prefill 494 -> 514 TFLOP/s on an H100).
  // Decode steps keep 64: for a 32-row step (128 units a KV head), 128-unit tiles measured 49
  // against 35 us a layer at 4096 keys.
  if (attention_uses_wmma()) {
    plan.m_tile = max_units <= 16 ? 16 : 64;
  } else if (wgmma != nullptr && wgmma_takes(max_units, s.head_dim, bs) &&
             cache.num_blocks * s.num_kv_heads * bs <= std::numeric_limits<std::int32_t>::max()) {  // TMA row coordinates
    plan.wgmma = true;
    plan.m_tile = max_units <= 64 || wgmma_mode() == 3 ? 64 : 128;
  } else {
    plan.m_tile = max_units <= 256 ? 64 : 128;
  }
  const std::int64_t m = plan.m_tile;

  // Tiles first, then splits: as many CTAs as fit on the GPU at once (kAttentionCtasPerSm a
  // multiprocessor), and not one more (rounding the splits up sent a few CTAs of a 32-row step
  // into a second wave).
  struct Tile {
    std::int32_t seq, unit_begin;
    std::int64_t keys;
  };
  std::vector<Tile> tiles;
  for (std::size_t i = 0; i < seqs.size(); ++i) {
    const std::int64_t units = static_cast<std::int64_t>(seqs[i].rows) * group;
    for (std::int64_t u = 0; u < units; u += m) {
      const std::int64_t last_row = (std::min(units, u + m) - 1) / group;
      tiles.push_back({static_cast<std::int32_t>(i), static_cast<std::int32_t>(u), seqs[i].cache_start + last_row + 1});
    }
  }
  const std::int64_t base = static_cast<std::int64_t>(tiles.size()) * s.num_kv_heads;
  plan.tile_heads = static_cast<int>(base);
  const std::int64_t per_sm = plan.wgmma ? 1 : kAttentionCtasPerSm;
  std::int64_t want =
      std::min(max_splits(), std::max<std::int64_t>(1, per_sm * sm_count / std::max<std::int64_t>(base, 1)));
  auto splits_of = [&](const Tile& t) {
    return std::clamp<std::int64_t>(want, 1, std::max<std::int64_t>(1, t.keys / kMinSplitKeys));
  };
  // Splits merge inside a cluster when every tile splits the same number of ways (the usual
  // decode step of one sequence; a power of two for the register-tiled kernel) and there are
  // many tiles to merge (any number for the warpgroup-MMA kernel): the split count
  // is what it would be anyway, and the combine kernel, with the partials' round trip through
  // memory, goes away. H200: a 32-row step at 512 keys (16 tiles x KV heads, 8 splits) 5.27 ->
  // 5.18 ms; a one-row step at 512 keys (8, 8 splits) went 4.56 -> 4.64, so few tiles keep the
  // combine kernel. All the clusters must run at once, or those past the GPU's capacity wait
  // for a second wave (NOTES.md, "The cluster-groups round").
  constexpr std::int64_t kMinClusterTiles = 16;
  const ClusterCapacity& capacity = !plan.wgmma ? clusters : m == 64 ? wgmma->clusters64 : wgmma->clusters128;
  std::int64_t cluster_splits = 0;  // > 1: every tile splits this many ways, as one cluster
  if (attention_clusters_enabled() && (m == 64 || plan.wgmma) && base >= (plan.wgmma ? 1 : kMinClusterTiles)) {
    const std::int64_t splits = splits_of(tiles.front());
    const bool uniform = std::all_of(tiles.begin(), tiles.end(), [&](const Tile& t) { return splits_of(t) == splits; });
    if (!plan.wgmma) {
      if (uniform && splits > 1 && splits <= kMaxAttentionCluster && (splits & (splits - 1)) == 0 && m % splits == 0 &&
          base <= capacity.of(static_cast<int>(splits))) {
        cluster_splits = splits;
      }
    } else if (uniform && splits > 1) {
      // Clusters of any size, fewer splits where that many do not all fit at once, as long as
      // the longest split keeps its length: the H200 runs 9 clusters of 9 of this kernel and 7
      // of any size 10-16, so a 32-row step at 1024 keys (8 tiles x KV heads, 17 key tiles)
      // takes 8 clusters of 9 (2 key tiles at most, as with 16 splits) instead of 16 splits and
      // the combine kernel (5.17 -> 5.01 ms); at 4096 keys (65 key tiles) none fits.
      std::int64_t longest = 0;
      for (const Tile& t : tiles) longest = std::max(longest, (t.keys + kKeyTile - 1) / kKeyTile);
      const std::int64_t tiles_per_split = (longest + splits - 1) / splits;
      for (std::int64_t c = std::min<std::int64_t>(splits, kMaxWgmmaCluster); c >= 2; --c) {
        if (base <= capacity.of(static_cast<int>(c)) && (longest + c - 1) / c == tiles_per_split) {
          cluster_splits = c;
          break;
        }
      }
    }
  }
  if (cluster_splits > 1) {
    plan.cluster = static_cast<int>(cluster_splits);
    want = cluster_splits;  // every tile has at least this many key tiles (uniform above)
  }
  std::vector<AttnWork> work;
  std::vector<AttnCombine> combine;
  for (const Tile& t : tiles) {
    // Whole key tiles, spread so that splits differ by at most one tile: rounding one length up
    // to whole tiles left CTA slots empty (a 32-row step at 4096 keys: 13 splits of 5 tiles
    // rather than 16 of 4 or 5, so 76 multiprocessors did 10 tiles while 56 did 5).
    const std::int64_t key_tiles = (t.keys + kKeyTile - 1) / kKeyTile;
    const std::int64_t splits = splits_of(t);
    auto split_begin = [&](std::int64_t k) { return std::min(t.keys, k * key_tiles / splits * kKeyTile); };
    if (splits > 1 && plan.cluster == 1) {
      const std::int64_t units = static_cast<std::int64_t>(seqs[static_cast<std::size_t>(t.seq)].rows) * group;
      plan.combine_units = static_cast<int>(std::max<std::int64_t>(plan.combine_units, std::min(m, units - t.unit_begin)));
    }
    for (std::int32_t h = 0; h < s.num_kv_heads; ++h) {
      // Whole (one split) or merged in a cluster: no partial slot. A cluster's splits are
      // consecutive work items, rank k taking split k.
      if (splits == 1 || plan.cluster > 1) {
        for (std::int64_t k = 0; k < splits; ++k) {
          work.push_back({t.seq, h, t.unit_begin, static_cast<std::int32_t>(split_begin(k)),
                          static_cast<std::int32_t>(split_begin(k + 1)), -1});
        }
        continue;
      }
      combine.push_back({t.seq, h, t.unit_begin, plan.partial_slots, static_cast<std::int32_t>(splits)});
      for (std::int64_t k = 0; k < splits; ++k) {
        work.push_back({t.seq, h, t.unit_begin, static_cast<std::int32_t>(split_begin(k)),
                        static_cast<std::int32_t>(split_begin(k + 1)), plan.partial_slots++});
      }
    }
  }
  plan.work_count = static_cast<int>(work.size());
  plan.combine_count = static_cast<int>(combine.size());
  plan.sequences_at = 0;
  append(plan.packed, seqs);
  plan.tables_at = static_cast<std::int64_t>(plan.packed.size());
  append(plan.packed, tables);
  plan.work_at = static_cast<std::int64_t>(plan.packed.size());
  append(plan.packed, work);
  plan.combine_at = static_cast<std::int64_t>(plan.packed.size());
  append(plan.packed, combine);
  plan.row_slot_at = static_cast<std::int64_t>(plan.packed.size());
  append(plan.packed, row_slot);
  return plan;
}

}  // namespace wedlm::cuda
