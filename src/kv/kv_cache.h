#pragma once
// Keys and values of rows already run through the model, in a pool of fixed-size blocks shared by
// every sequence (paged attention). A sequence's block table maps its logical cache slot s to
// block table[s / block_size], offset s % block_size. The cache does no bookkeeping: the caller
// says which slots a forward writes (WeDLM overwrites the slots after the committed length every
// step), so truncating is just writing again.
#include <cstdint>

namespace wedlm {

struct KvCacheShape {
  std::int64_t num_layers = 0;
  std::int64_t num_kv_heads = 0;
  std::int64_t head_dim = 0;
  std::int64_t block_size = 16;  // cache slots per block
  std::int64_t num_blocks = 0;

  std::int64_t capacity() const { return block_size * num_blocks; }
};

class KvCache {
 public:
  explicit KvCache(const KvCacheShape& shape) : shape_(shape) {}
  virtual ~KvCache() = default;
  const KvCacheShape& shape() const { return shape_; }
  std::int64_t capacity() const { return shape_.capacity(); }

 private:
  KvCacheShape shape_;
};

}  // namespace wedlm
