#pragma once
// Keys and values of the rows already run through the model, one slot per row. The cache does no
// bookkeeping of its own: the caller says which cache slots a forward writes (WeDLM overwrites
// the slots after the committed length every step), so truncating is just writing again.
#include <cstdint>

namespace wedlm {

struct KvCacheShape {
  std::int64_t num_layers = 0;
  std::int64_t num_kv_heads = 0;
  std::int64_t head_dim = 0;
  std::int64_t capacity = 0;  // cache slots
};

class KvCache {
 public:
  explicit KvCache(const KvCacheShape& shape) : shape_(shape) {}
  virtual ~KvCache() = default;
  const KvCacheShape& shape() const { return shape_; }
  std::int64_t capacity() const { return shape_.capacity; }

 private:
  KvCacheShape shape_;
};

}  // namespace wedlm
