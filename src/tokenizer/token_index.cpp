#include "tokenizer/token_index.h"

#include <bit>

namespace wedlm::tokenizer {

void TokenIndex::build(const std::vector<std::string>& tokens, const std::vector<TokenId>& order) {
  tokens_ = &tokens;
  const std::size_t capacity = std::bit_ceil(order.size() * 2 + 16);
  slots_.assign(capacity, Slot{0, -1});
  mask_ = capacity - 1;
  for (TokenId id : order) {
    const std::string& token = tokens[static_cast<std::size_t>(id)];
    const std::uint64_t h = hash_of(token);
    const auto tag = static_cast<std::uint32_t>(h >> 32);
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      Slot& slot = slots_[i];
      if (slot.id < 0) {
        slot = {tag, id};
        break;
      }
      if (slot.hash == tag && tokens[static_cast<std::size_t>(slot.id)] == token) {
        slot.id = id;
        break;
      }
    }
  }
}

std::optional<TokenId> TokenIndex::find(std::string_view token) const {
  if (slots_.empty()) return std::nullopt;
  const std::uint64_t h = hash_of(token);
  const auto tag = static_cast<std::uint32_t>(h >> 32);
  for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
    const Slot& slot = slots_[i];
    if (slot.id < 0) return std::nullopt;
    if (slot.hash == tag && (*tokens_)[static_cast<std::size_t>(slot.id)] == token) return slot.id;
  }
}

}  // namespace wedlm::tokenizer
