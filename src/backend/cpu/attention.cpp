#include "backend/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/parallel.h"
#include "backend/cpu/vector_math.h"
#include "util/error.h"

namespace wedlm::cpu {

namespace {

// fp32 keys and values laid out [layer][kv_head][slot][head_dim], so one head's keys are
// contiguous for the score loop.
class CpuKvCache final : public KvCache {
 public:
  explicit CpuKvCache(const KvCacheShape& s)
      : KvCache(s), keys(static_cast<std::size_t>(s.num_layers * s.num_kv_heads * s.capacity * s.head_dim)),
        values(keys.size()) {}

  float* key(std::int64_t layer, std::int64_t head, std::int64_t slot) { return keys.data() + offset(layer, head, slot); }
  float* value(std::int64_t layer, std::int64_t head, std::int64_t slot) {
    return values.data() + offset(layer, head, slot);
  }

 private:
  std::size_t offset(std::int64_t layer, std::int64_t head, std::int64_t slot) const {
    const KvCacheShape& s = shape();
    return static_cast<std::size_t>(((layer * s.num_kv_heads + head) * s.capacity + slot) * s.head_dim);
  }
  std::vector<float> keys, values;
};

}  // namespace

std::unique_ptr<KvCache> make_cpu_kv_cache(const KvCacheShape& shape) { return std::make_unique<CpuKvCache>(shape); }

void attention(const float* qkv, std::int64_t qkv_stride, std::int64_t rows, const AttentionShape& s, KvCache& base,
               std::int64_t layer, std::int64_t cache_start, float* out, std::int64_t out_stride) {
  auto& cache = static_cast<CpuKvCache&>(base);
  const std::int64_t d = s.head_dim;
  if (cache_start < 0 || cache_start + rows > cache.capacity()) {
    fail("KV cache overflow: rows {}..{} do not fit in {} cache slots", cache_start, cache_start + rows,
         cache.capacity());
  }
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* row = qkv + r * qkv_stride;
    for (std::int64_t g = 0; g < s.num_kv_heads; ++g) {
      std::copy_n(row + (s.num_heads + g) * d, d, cache.key(layer, g, cache_start + r));
      std::copy_n(row + (s.num_heads + s.num_kv_heads + g) * d, d, cache.value(layer, g, cache_start + r));
    }
  }
  const std::int64_t group = s.num_heads / s.num_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
#pragma omp parallel if (worth_parallel(s.num_heads * rows * (cache_start + rows) * d * 4))
  {
    std::vector<float> scores(static_cast<std::size_t>(cache_start + rows));
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (std::int64_t h = 0; h < s.num_heads; ++h) {
      for (std::int64_t r = 0; r < rows; ++r) {
        const std::int64_t g = h / group;
        const std::int64_t keys = cache_start + r + 1;
        const float* q = qkv + r * qkv_stride + h * d;
        const float* k0 = cache.key(layer, g, 0);
        const float* v0 = cache.value(layer, g, 0);
        float max_score = -INFINITY;
        for (std::int64_t j = 0; j < keys; ++j) {
          scores[static_cast<std::size_t>(j)] = dot(q, k0 + j * d, d) * scale;
          max_score = std::max(max_score, scores[static_cast<std::size_t>(j)]);
        }
        float total = 0.0f;
        for (std::int64_t j = 0; j < keys; ++j) {
          float e = std::exp(scores[static_cast<std::size_t>(j)] - max_score);
          scores[static_cast<std::size_t>(j)] = e;
          total += e;
        }
        float* o = out + r * out_stride + h * d;
        std::fill_n(o, d, 0.0f);
        const float inv_total = 1.0f / total;
        for (std::int64_t j = 0; j < keys; ++j) axpy(scores[static_cast<std::size_t>(j)] * inv_total, v0 + j * d, o, d);
      }
    }
  }
}

}  // namespace wedlm::cpu
