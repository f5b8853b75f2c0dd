#include "backend/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/parallel.h"
#include "backend/cpu/vector_math.h"
#include "util/error.h"

namespace wedlm::cpu {

namespace {

// fp32 keys and values laid out [layer][block][kv_head][slot in block][head_dim]: one head's keys
// are contiguous within a block for the score loop.
class CpuKvCache final : public KvCache {
 public:
  explicit CpuKvCache(const KvCacheShape& s)
      : KvCache(s),
        keys(static_cast<std::size_t>(s.num_layers * s.num_blocks * s.num_kv_heads * s.block_size * s.head_dim)),
        values(keys.size()) {}

  float* key(std::int64_t layer, std::int64_t block, std::int64_t head, std::int64_t offset) {
    return keys.data() + index(layer, block, head, offset);
  }
  float* value(std::int64_t layer, std::int64_t block, std::int64_t head, std::int64_t offset) {
    return values.data() + index(layer, block, head, offset);
  }

 private:
  std::size_t index(std::int64_t layer, std::int64_t block, std::int64_t head, std::int64_t offset) const {
    const KvCacheShape& s = shape();
    return static_cast<std::size_t>((((layer * s.num_blocks + block) * s.num_kv_heads + head) * s.block_size + offset) *
                                    s.head_dim);
  }
  std::vector<float> keys, values;
};

// One query row's work: a sequence, a row within it, a query head.
struct RowTask {
  const AttentionSequence* sequence;
  std::int64_t row;  // within the sequence
};

}  // namespace

std::unique_ptr<KvCache> make_cpu_kv_cache(const KvCacheShape& shape) { return std::make_unique<CpuKvCache>(shape); }

void attention(const float* qkv, std::int64_t qkv_stride, const AttentionShape& s, KvCache& base, std::int64_t layer,
               std::span<const AttentionSequence> sequences, float* out, std::int64_t out_stride) {
  auto& cache = static_cast<CpuKvCache&>(base);
  const std::int64_t d = s.head_dim, bs = cache.shape().block_size;
  std::vector<RowTask> tasks;
  std::int64_t max_keys = 0, work = 0;
  for (const AttentionSequence& seq : sequences) {
    const std::int64_t end = seq.cache_start + seq.rows;
    if (seq.cache_start < 0 || end > static_cast<std::int64_t>(seq.block_table.size()) * bs) {
      fail("KV cache overflow: slots {}..{} exceed the sequence's {} blocks of {} slots", seq.cache_start, end - 1,
           seq.block_table.size(), bs);
    }
    for (std::int32_t block : seq.block_table) {
      if (block < 0 || block >= cache.shape().num_blocks) fail("internal: KV block {} is outside the pool", block);
    }
    for (std::int64_t r = 0; r < seq.rows; ++r) {
      const float* row = qkv + (seq.row_begin + r) * qkv_stride;
      const std::int64_t slot = seq.cache_start + r;
      const std::int64_t block = seq.block_table[static_cast<std::size_t>(slot / bs)], offset = slot % bs;
      for (std::int64_t g = 0; g < s.num_kv_heads; ++g) {
        std::copy_n(row + (s.num_heads + g) * d, d, cache.key(layer, block, g, offset));
        std::copy_n(row + (s.num_heads + s.num_kv_heads + g) * d, d, cache.value(layer, block, g, offset));
      }
      tasks.push_back({&seq, r});
    }
    max_keys = std::max(max_keys, end);
    work += seq.rows * end;
  }
  const std::int64_t group = s.num_heads / s.num_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const std::int64_t task_count = static_cast<std::int64_t>(tasks.size());
#pragma omp parallel if (worth_parallel(s.num_heads * work * d * 4))
  {
    std::vector<float> scores(static_cast<std::size_t>(max_keys));
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (std::int64_t h = 0; h < s.num_heads; ++h) {
      for (std::int64_t t = 0; t < task_count; ++t) {
        const AttentionSequence& seq = *tasks[static_cast<std::size_t>(t)].sequence;
        const std::int64_t r = tasks[static_cast<std::size_t>(t)].row;
        const std::int64_t g = h / group;
        const std::int64_t keys = seq.cache_start + r + 1;
        const float* q = qkv + (seq.row_begin + r) * qkv_stride + h * d;
        float max_score = -INFINITY;
        for (std::int64_t j = 0; j < keys; ++j) {
          const float* k = cache.key(layer, seq.block_table[static_cast<std::size_t>(j / bs)], g, j % bs);
          scores[static_cast<std::size_t>(j)] = dot(q, k, d) * scale;
          max_score = std::max(max_score, scores[static_cast<std::size_t>(j)]);
        }
        float total = 0.0f;
        for (std::int64_t j = 0; j < keys; ++j) {
          float e = std::exp(scores[static_cast<std::size_t>(j)] - max_score);
          scores[static_cast<std::size_t>(j)] = e;
          total += e;
        }
        float* o = out + (seq.row_begin + r) * out_stride + h * d;
        std::fill_n(o, d, 0.0f);
        const float inv_total = 1.0f / total;
        for (std::int64_t j = 0; j < keys; ++j) {
          const float* v = cache.value(layer, seq.block_table[static_cast<std::size_t>(j / bs)], g, j % bs);
          axpy(scores[static_cast<std::size_t>(j)] * inv_total, v, o, d);
        }
      }
    }
  }
}

}  // namespace wedlm::cpu
