#pragma once
// Full KV blocks kept after their sequences end, keyed by every token up to the block's end, so
// that a later request with the same prefix (a shared system prompt, the earlier turns of a chat)
// reuses them instead of recomputing. The cache holds one reference to each block it keeps and
// evicts the least recently used block that nobody else holds when the pool runs short.
#include <cstdint>
#include <list>
#include <span>
#include <unordered_map>
#include <vector>

#include "kv/block_allocator.h"

namespace wedlm {

class PrefixCache {
 public:
  PrefixCache(BlockAllocator& allocator, std::int64_t block_size);

  // The cached blocks that hold tokens[0, n * block_size) for the largest n <= max_blocks; each
  // returned block is retained for the caller.
  std::vector<std::int32_t> match(std::span<const std::int32_t> tokens, std::int64_t max_blocks);
  // Offers a sequence's first `full_blocks` blocks (block i holds tokens[i*bs, (i+1)*bs)); the
  // cache keeps (and retains) those it does not have yet.
  void insert(std::span<const std::int32_t> tokens, std::span<const std::int32_t> blocks, std::int64_t full_blocks);
  // Frees the least recently used block that only the cache holds; false when there is none.
  bool evict_one();
  std::int64_t cached_blocks() const { return static_cast<std::int64_t>(entries_.size()); }

 private:
  struct Entry {
    std::int32_t block;
    std::uint64_t parent;  // key of the previous block (0 for the first)
    std::vector<std::int32_t> tokens;
    std::list<std::uint64_t>::iterator lru;
  };
  std::uint64_t key_of(std::uint64_t parent, std::span<const std::int32_t> block_tokens) const;
  void touch(Entry& entry);

  BlockAllocator& allocator_;
  std::int64_t block_size_;
  std::unordered_map<std::uint64_t, Entry> entries_;
  std::list<std::uint64_t> lru_;  // most recently used first
};

}  // namespace wedlm
