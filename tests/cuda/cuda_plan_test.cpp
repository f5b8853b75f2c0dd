// The attention plan is host code: these checks run on CI without a GPU. Every (sequence, KV
// head, unit tile) must see each of its keys exactly once, in whole key tiles, with splits
// balanced to within one tile and no more CTAs than fit the GPU at once (plus one per tile).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <tuple>
#include <vector>

#include "backend/cuda/attention_plan.h"

namespace wedlm::cuda {
namespace {

struct Case {
  std::vector<std::int64_t> rows, contexts;  // per sequence
  int sm_count;
  ClusterCapacity clusters{};  // unbounded unless given
  // Planned for a GPU that runs the warpgroup-MMA kernel, whose clusters of 128-unit tiles fit
  // this many at once (of 2, 4, 8).
  const ClusterCapacity* wgmma = nullptr;
};

ClusterCapacity capacity(int of2, int of4, int of8) {
  ClusterCapacity c;
  c.active[2] = of2;
  c.active[4] = of4;
  c.active[8] = of8;
  return c;
}

// Clusters of each size 2-16 that run at once.
ClusterCapacity sizes(const std::vector<int>& active) {
  ClusterCapacity c;
  for (std::size_t i = 0; i < active.size(); ++i) c.active[i + 2] = active[i];
  return c;
}

template <typename T>
std::vector<T> unpack(const AttentionPlan& plan, std::int64_t at, int count) {
  std::vector<T> items(static_cast<std::size_t>(count));
  if (count > 0) std::memcpy(items.data(), plan.packed.data() + at, items.size() * sizeof(T));
  return items;
}

TEST(CudaAttentionPlan, SplitsCoverEveryKeyOnceAndBalanced) {
  const AttentionShape shape{32, 8, 128};
  const std::int64_t group = 4, block_size = 16;
  // The warpgroup-MMA kernel's clusters on the H200 (one CTA a multiprocessor, 132), as measured;
  // a GPU whose processor clusters hold 14 each, 8 of them; one whose clusters of 4-8 do not fit
  // 8 at once.
  const ClusterCapacity wgmma_h200 = sizes({66, 39, 30, 22, 17, 15, 15, 9, 7, 7, 7, 7, 7, 7, 7});
  const ClusterCapacity wgmma_gpc14 = sizes({56, 32, 24, 16, 16, 16, 8, 8, 8, 8, 8, 8, 8, 0, 0});
  const ClusterCapacity wgmma_small = sizes({66, 39, 7, 7, 7, 7, 7, 0, 0, 0, 0, 0, 0, 0, 0});
  const std::vector<Case> cases = {{{1}, {512}, 132},      {{1}, {4096}, 132},     {{32}, {4096}, 132},
                                   {{32}, {512}, 132},     {{16}, {4096}, 132},    {{64}, {4000}, 132},
                                   {{1, 1, 1}, {5, 300, 9000}, 132}, {{7, 25}, {0, 777}, 8},
                                   {{2048}, {0}, 132},     {{3}, {70}, 1},
                                   // The H200's capacity (30 clusters of 8 at once), and 15 of 8.
                                   {{32}, {512}, 132, capacity(132, 62, 30)}, {{32}, {512}, 132, capacity(132, 62, 15)},
                                   {{32}, {4096}, 132, {}, &wgmma_h200}, {{32}, {512}, 132, {}, &wgmma_h200},
                                   {{32}, {512}, 132, {}, &wgmma_small}, {{20, 40}, {300, 1000}, 132, {}, &wgmma_h200},
                                   {{16}, {4096}, 132, {}, &wgmma_h200}, {{1}, {4096}, 132, {}, &wgmma_h200},
                                   {{32}, {1024}, 132, {}, &wgmma_h200}, {{16}, {1024}, 132, {}, &wgmma_h200},
                                   {{32}, {4096}, 132, {}, &wgmma_gpc14},
                                   {{2048}, {0}, 132, {}, &wgmma_h200}};
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << "sequences " << c.rows.size() << " rows[0] " << c.rows[0] << " context[0] "
                                      << c.contexts[0] << " sms " << c.sm_count);
    std::vector<std::vector<std::int32_t>> tables;
    std::vector<AttentionSequence> seqs;
    std::int64_t rows = 0, blocks = 0;
    for (std::size_t i = 0; i < c.rows.size(); ++i) {
      const std::int64_t need = (c.contexts[i] + c.rows[i] + block_size - 1) / block_size;
      std::vector<std::int32_t> table;
      for (std::int64_t b = 0; b < need; ++b) table.push_back(static_cast<std::int32_t>(blocks++));
      tables.push_back(table);
      rows += c.rows[i];
    }
    std::int64_t row = 0;
    for (std::size_t i = 0; i < c.rows.size(); ++i) {
      seqs.push_back({row, c.rows[i], c.contexts[i], tables[i]});
      row += c.rows[i];
    }
    KvCacheShape cache;
    cache.num_layers = 1;
    cache.num_kv_heads = shape.num_kv_heads;
    cache.head_dim = shape.head_dim;
    cache.block_size = block_size;
    cache.num_blocks = blocks;
    const WgmmaAttention wgmma{c.wgmma != nullptr ? *c.wgmma : ClusterCapacity{}, c.wgmma != nullptr ? *c.wgmma : ClusterCapacity{}};
    const AttentionPlan plan = plan_attention(seqs, rows, shape, cache, c.sm_count, c.clusters, c.wgmma != nullptr ? &wgmma : nullptr);
    // The warpgroup-MMA kernel takes decode steps of 33-256 units a KV head (9-64 rows here), in
    // tiles of 64 or 128 units, one CTA a multiprocessor; other steps keep the register-tiled kernel.
    std::int64_t max_units = 0;
    for (std::int64_t r : c.rows) max_units = std::max(max_units, r * group);
    EXPECT_EQ(plan.wgmma, c.wgmma != nullptr && max_units > 32 && max_units <= 256);
    if (plan.wgmma) {
      EXPECT_EQ(plan.m_tile, max_units <= 64 ? 64 : 128);
    }
    const std::int64_t per_sm = plan.wgmma ? 1 : kAttentionCtasPerSm;
    const ClusterCapacity& clusters = plan.wgmma ? *c.wgmma : c.clusters;
    const auto work = unpack<AttnWork>(plan, plan.work_at, plan.work_count);
    const auto combine = unpack<AttnCombine>(plan, plan.combine_at, plan.combine_count);

    // Key ranges of each (sequence, head, unit tile), in plan order.
    std::map<std::tuple<int, int, int>, std::vector<AttnWork>> ranges;
    std::set<int> slots;
    for (const AttnWork& w : work) {
      ranges[{w.seq, w.kv_head, w.unit_begin}].push_back(w);
      if (w.partial >= 0) {
        EXPECT_TRUE(slots.insert(w.partial).second) << "partial slot used twice";
      }
    }
    std::int64_t tiles = 0;
    for (std::size_t i = 0; i < seqs.size(); ++i) tiles += (c.rows[i] * group + plan.m_tile - 1) / plan.m_tile;
    auto key_tiles = [](std::int64_t keys) { return (keys + kKeyTile - 1) / kKeyTile; };
    std::int64_t longest_tile = 0, longest_split = 0, longest_tile_splits = 0;
    EXPECT_EQ(static_cast<std::int64_t>(ranges.size()), tiles * shape.num_kv_heads);
    // A recorded graph's grid (attention_work_capacity of the plan's tile_heads) covers it.
    EXPECT_EQ(plan.tile_heads, tiles * shape.num_kv_heads);
    EXPECT_LE(plan.work_count, attention_work_capacity(plan.tile_heads, plan.wgmma, c.sm_count, plan.cluster));
    EXPECT_LE(attention_work_capacity(plan.tile_heads, plan.wgmma, c.sm_count, plan.cluster),
              per_sm * c.sm_count + tiles * shape.num_kv_heads);

    int combine_units = 0;
    for (const auto& [key, items] : ranges) {
      const auto [s, h, unit_begin] = key;
      const std::int64_t units = c.rows[static_cast<std::size_t>(s)] * group;
      const std::int64_t keys = c.contexts[static_cast<std::size_t>(s)] + (std::min<std::int64_t>(units, unit_begin + plan.m_tile) - 1) / group + 1;
      std::int64_t at = 0, shortest = keys, longest = 0;
      for (const AttnWork& w : items) {
        EXPECT_EQ(w.key_begin, at);
        EXPECT_EQ(w.key_begin % kKeyTile, 0);
        EXPECT_GT(w.key_end, w.key_begin);
        at = w.key_end;
        shortest = std::min<std::int64_t>(shortest, w.key_end - w.key_begin);
        longest = std::max<std::int64_t>(longest, w.key_end - w.key_begin);
        EXPECT_EQ(w.partial < 0, items.size() == 1 || plan.cluster > 1);
      }
      EXPECT_EQ(at, keys) << "keys of the tile not covered";
      EXPECT_LE(longest - shortest, kKeyTile) << "splits differ by more than a key tile";
      // As many splits as there are CTA slots for each tile, and none shorter than a key tile;
      // clusters of the warpgroup-MMA kernel may take fewer (checked below).
      const std::int64_t want = std::max<std::int64_t>(1, per_sm * c.sm_count / (tiles * shape.num_kv_heads));
      const std::int64_t splits = std::min(want, std::max<std::int64_t>(1, keys / kKeyTile));
      if (plan.wgmma && plan.cluster > 1) {
        EXPECT_LE(static_cast<std::int64_t>(items.size()), splits);
      } else {
        EXPECT_EQ(static_cast<std::int64_t>(items.size()), splits);
      }
      if (key_tiles(keys) > longest_tile) {
        longest_tile = key_tiles(keys);
        longest_tile_splits = splits;
      }
      longest_split = std::max(longest_split, key_tiles(longest));
      if (plan.cluster > 1) {
        EXPECT_EQ(static_cast<int>(items.size()), plan.cluster);
      } else if (items.size() > 1) {
        combine_units = std::max<int>(combine_units, static_cast<int>(std::min<std::int64_t>(plan.m_tile, units - unit_begin)));
        const auto found = std::find_if(combine.begin(), combine.end(), [&](const AttnCombine& m) {
          return m.seq == s && m.kv_head == h && m.unit_begin == unit_begin;
        });
        ASSERT_NE(found, combine.end());
        EXPECT_EQ(found->splits, static_cast<int>(items.size()));
        EXPECT_EQ(found->partial_base, items.front().partial);
      }
    }
    EXPECT_EQ(plan.combine_units, combine_units);
    // Fewer splits than CTA slots only where no split gets longer.
    EXPECT_EQ(longest_split, (longest_tile + longest_tile_splits - 1) / longest_tile_splits);
    if (plan.cluster > 1) {
      // A cluster is `cluster` consecutive work items: one tile's splits, in key order.
      EXPECT_EQ(plan.combine_count, 0);
      EXPECT_EQ(plan.partial_slots, 0);
      ASSERT_EQ(plan.work_count % plan.cluster, 0);
      for (int i = 0; i < plan.work_count; i += plan.cluster) {
        for (int k = 1; k < plan.cluster; ++k) {
          const AttnWork& a = work[static_cast<std::size_t>(i + k - 1)];
          const AttnWork& b = work[static_cast<std::size_t>(i + k)];
          EXPECT_TRUE(a.seq == b.seq && a.kv_head == b.kv_head && a.unit_begin == b.unit_begin && a.key_end == b.key_begin);
        }
      }
    }
    // A 32-row step of one sequence (16 tiles x KV heads) merges its 8 splits in a cluster at
    // 512 keys; at 4096 keys it splits 16 ways, more than a cluster takes. One row (8 tiles x
    // KV heads) keeps the combine kernel, and so does a plan whose 16 clusters do not all fit.
    // With the warpgroup-MMA kernel (8 tiles x KV heads, 16 splits wanted) the 512-key step
    // splits 8 ways into clusters of 8 where 8 of them fit at once; at 1024 keys (17 key tiles)
    // the H200 takes clusters of 9 (2 key tiles a split, as 16 splits would be); at 4096 keys
    // (65 key tiles) 16 splits of at most 5 need clusters of 13 or more, which fit only where
    // 8 of them run at once; where no cluster fits, the combine kernel merges.
    if (c.rows.size() == 1 && (c.rows[0] == 32 || c.rows[0] == 16) && c.wgmma == &wgmma_h200) {
      EXPECT_EQ(plan.cluster, c.contexts[0] == 512 ? 8 : c.contexts[0] == 1024 ? 9 : 1);
    }
    if (c.wgmma == &wgmma_gpc14) {
      EXPECT_EQ(plan.cluster, 14);
    }
    if (c.wgmma == &wgmma_small) {
      EXPECT_EQ(plan.cluster, 1);
    }
    if (plan.cluster > 1) {
      EXPECT_LE(static_cast<std::int64_t>(ranges.size()), clusters.of(plan.cluster)) << "clusters past one wave";
    }
    if (c.rows.size() == 1 && c.rows[0] == 1) {
      EXPECT_EQ(plan.cluster, 1);
    }
  }
}


// The grid a recorded graph launches (attention_work_capacity of the plan's tile_heads) must hold
// every work item of every plan with the same tile_heads: random batches of 1-8 sequences of up
// to 64 rows in all, contexts up to 9000 keys, on GPUs of 1 to 132 multiprocessors, both kernels.
TEST(CudaAttentionPlan, GraphGridsCoverEveryPlanOfTheirTileCount) {
  const AttentionShape shape{32, 8, 128};
  std::mt19937 rng(11);
  ClusterCapacity any;
  for (int& active : any.active) active = 1000;
  const WgmmaAttention wgmma{any, any};
  for (int trial = 0; trial < 400; ++trial) {
    const int sequences = std::uniform_int_distribution<int>(1, 8)(rng);
    const int sm_count = std::vector<int>{1, 8, 66, 132}[static_cast<std::size_t>(trial % 4)];
    std::vector<std::vector<std::int32_t>> tables;
    std::vector<AttentionSequence> seqs;
    std::int64_t rows = 0, blocks = 0;
    for (int i = 0; i < sequences && rows < 64; ++i) {
      const std::int64_t r = std::uniform_int_distribution<std::int64_t>(1, std::min<std::int64_t>(32, 64 - rows))(rng);
      const std::int64_t context = std::uniform_int_distribution<std::int64_t>(0, 9000)(rng);
      std::vector<std::int32_t> table;
      for (std::int64_t b = 0; b < (context + r + 15) / 16; ++b) table.push_back(static_cast<std::int32_t>(blocks++));
      tables.push_back(std::move(table));
      seqs.push_back({rows, r, context, {}});
      rows += r;
    }
    for (std::size_t i = 0; i < seqs.size(); ++i) seqs[i].block_table = tables[i];
    KvCacheShape cache;
    cache.num_layers = 1;
    cache.num_kv_heads = shape.num_kv_heads;
    cache.head_dim = shape.head_dim;
    cache.block_size = 16;
    cache.num_blocks = blocks;
    for (bool use_wgmma : {false, true}) {
      const AttentionPlan plan = plan_attention(seqs, rows, shape, cache, sm_count, any, use_wgmma ? &wgmma : nullptr);
      ASSERT_LE(plan.work_count, attention_work_capacity(plan.tile_heads, plan.wgmma, sm_count, plan.cluster))
          << "trial " << trial << ", " << seqs.size() << " sequences, " << rows << " rows, " << sm_count << " SMs";
      ASSERT_LE(plan.combine_count, plan.tile_heads);
      if (plan.cluster > 1) {
        ASSERT_EQ(plan.work_count % plan.cluster, 0);
      }
    }
  }
}

}  // namespace
}  // namespace wedlm::cuda
