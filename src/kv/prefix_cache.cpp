#include "kv/prefix_cache.h"

#include <algorithm>

namespace wedlm {

PrefixCache::PrefixCache(BlockAllocator& allocator, std::int64_t block_size)
    : allocator_(allocator), block_size_(block_size) {}

std::uint64_t PrefixCache::key_of(std::uint64_t parent, std::span<const std::int32_t> block_tokens) const {
  // A chain of 64-bit mixes (splitmix64 finaliser); matches are verified against the stored
  // tokens and parent, so a collision can only cost a miss, never a wrong block.
  std::uint64_t h = parent ^ 0x9e3779b97f4a7c15ull;
  for (std::int32_t t : block_tokens) {
    h ^= static_cast<std::uint32_t>(t) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
    h ^= h >> 31;
  }
  return h == 0 ? 1 : h;
}

void PrefixCache::touch(Entry& entry) { lru_.splice(lru_.begin(), lru_, entry.lru); }

std::vector<std::int32_t> PrefixCache::match(std::span<const std::int32_t> tokens, std::int64_t max_blocks) {
  std::vector<std::int32_t> blocks;
  std::uint64_t parent = 0;
  const std::int64_t available = std::min<std::int64_t>(max_blocks, static_cast<std::int64_t>(tokens.size()) / block_size_);
  for (std::int64_t i = 0; i < available; ++i) {
    auto block_tokens = tokens.subspan(static_cast<std::size_t>(i * block_size_), static_cast<std::size_t>(block_size_));
    const std::uint64_t key = key_of(parent, block_tokens);
    auto it = entries_.find(key);
    if (it == entries_.end() || it->second.parent != parent ||
        !std::equal(block_tokens.begin(), block_tokens.end(), it->second.tokens.begin(), it->second.tokens.end())) {
      break;
    }
    touch(it->second);
    allocator_.retain(it->second.block);
    blocks.push_back(it->second.block);
    parent = key;
  }
  return blocks;
}

void PrefixCache::insert(std::span<const std::int32_t> tokens, std::span<const std::int32_t> blocks,
                         std::int64_t full_blocks) {
  std::uint64_t parent = 0;
  for (std::int64_t i = 0; i < full_blocks; ++i) {
    auto block_tokens = tokens.subspan(static_cast<std::size_t>(i * block_size_), static_cast<std::size_t>(block_size_));
    const std::uint64_t key = key_of(parent, block_tokens);
    auto it = entries_.find(key);
    if (it == entries_.end()) {
      const std::int32_t block = blocks[static_cast<std::size_t>(i)];
      allocator_.retain(block);
      lru_.push_front(key);
      entries_.emplace(key, Entry{block, parent, std::vector<std::int32_t>(block_tokens.begin(), block_tokens.end()),
                                  lru_.begin()});
    } else {
      touch(it->second);
    }
    parent = key;
  }
}

bool PrefixCache::evict_one() {
  for (auto it = lru_.rbegin(); it != lru_.rend(); ++it) {
    auto entry = entries_.find(*it);
    if (allocator_.refcount(entry->second.block) == 1) {
      allocator_.release(entry->second.block);
      lru_.erase(std::next(it).base());
      entries_.erase(entry);
      return true;
    }
  }
  return false;
}

}  // namespace wedlm
