#include "kv/block_allocator.h"

#include <stdexcept>

namespace wedlm {

BlockAllocator::BlockAllocator(std::int32_t num_blocks) : refcount_(static_cast<std::size_t>(num_blocks), 0) {
  free_.reserve(static_cast<std::size_t>(num_blocks));
  for (std::int32_t b = num_blocks - 1; b >= 0; --b) free_.push_back(b);
}

std::optional<std::int32_t> BlockAllocator::allocate() {
  if (free_.empty()) return std::nullopt;
  std::int32_t block = free_.back();
  free_.pop_back();
  refcount_[static_cast<std::size_t>(block)] = 1;
  return block;
}

void BlockAllocator::retain(std::int32_t block) {
  std::int32_t& count = refcount_.at(static_cast<std::size_t>(block));
  if (count <= 0) throw std::logic_error("BlockAllocator::retain of a free block");
  ++count;
}

void BlockAllocator::release(std::int32_t block) {
  std::int32_t& count = refcount_.at(static_cast<std::size_t>(block));
  if (count <= 0) throw std::logic_error("BlockAllocator::release of a free block");
  if (--count == 0) free_.push_back(block);
}

}  // namespace wedlm
