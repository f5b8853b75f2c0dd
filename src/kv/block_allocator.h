#pragma once
// Which blocks of the KV pool are free, with reference counts so that a block can be shared by
// several sequences (a common prompt prefix).
#include <cstdint>
#include <optional>
#include <vector>

namespace wedlm {

class BlockAllocator {
 public:
  explicit BlockAllocator(std::int32_t num_blocks);

  // A free block with reference count 1, or nothing when the pool is full.
  std::optional<std::int32_t> allocate();
  void retain(std::int32_t block);
  // Drops one reference; the block is free again at zero.
  void release(std::int32_t block);

  std::int32_t free_blocks() const { return static_cast<std::int32_t>(free_.size()); }
  std::int32_t used_blocks() const { return num_blocks() - free_blocks(); }
  std::int32_t num_blocks() const { return static_cast<std::int32_t>(refcount_.size()); }
  std::int32_t refcount(std::int32_t block) const { return refcount_.at(static_cast<std::size_t>(block)); }

 private:
  std::vector<std::int32_t> refcount_;
  std::vector<std::int32_t> free_;  // a stack: the most recently freed block is reused first
};

}  // namespace wedlm
