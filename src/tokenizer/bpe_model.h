#pragma once
// The BPE model of a byte-level tokenizer: vocabulary, merges by rank, and the merge loop.
// It works on raw bytes: each byte starts as the token of its byte-level character.
#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "wedlm/tokenizer.h"

namespace wedlm::tokenizer {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using TokenIndex = std::unordered_map<std::string, TokenId, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  // `vocab` maps byte-level token strings to ids; `merges` are pairs of token strings in rank
  // order. `origin` names the source in error messages.
  BpeModel(TokenIndex vocab, const std::vector<std::pair<std::string, std::string>>& merges, bool ignore_merges,
           std::string_view origin);

  // Appends the ids of one pre-tokenized piece (raw bytes, not byte-level characters).
  void encode_piece(std::string_view bytes, std::vector<TokenId>& out) const;

  const TokenIndex& vocab() const { return vocab_; }

 private:
  struct Merge {
    std::int32_t rank;
    TokenId result;
  };
  static std::uint64_t pair_key(TokenId left, TokenId right) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) | static_cast<std::uint32_t>(right);
  }
  void merge_bytes(std::string_view bytes, std::vector<TokenId>& out) const;

  TokenIndex vocab_;
  std::unordered_map<std::uint64_t, Merge> merges_;
  std::array<TokenId, 256> byte_token_{};
  bool ignore_merges_;

  // Pieces repeat a lot in real text (words, indentation); the reference caches them too.
  static constexpr std::size_t kCacheCapacity = 1 << 16;
  static constexpr std::size_t kCacheMaxPieceBytes = 64;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<TokenId>, StringHash, std::equal_to<>> cache_;
};

}  // namespace wedlm::tokenizer
