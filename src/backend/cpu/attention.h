#pragma once
#include <cstdint>
#include <memory>
#include <span>

#include "backend/backend.h"

namespace wedlm::cpu {

std::unique_ptr<KvCache> make_cpu_kv_cache(const KvCacheShape& shape);

// See Backend::attention. qkv rows are [q heads | k heads | v heads], fp32.
void attention(const float* qkv, std::int64_t qkv_stride, const AttentionShape& shape, KvCache& cache,
               std::int64_t layer, std::span<const AttentionSequence> sequences, float* out, std::int64_t out_stride);

}  // namespace wedlm::cpu
