#pragma once
// The BPE model of a byte-level tokenizer: vocabulary, merges by rank, and the merge loop.
// It works on raw bytes: each byte starts as the token of its byte-level character.
#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/token_index.h"
#include "wedlm/tokenizer.h"

namespace wedlm::tokenizer {

// Transparent, so the piece cache is searched with a string_view. Deliberately not noexcept:
// libstdc++ then stores each node's hash and never rehashes keys while walking a bucket.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class BpeModel {
 public:
  // `vocab` pairs byte-level token strings with ids; `merges` are pairs of token strings in rank
  // order. `origin` names the source in error messages.
  BpeModel(std::vector<std::pair<std::string, TokenId>> vocab,
           const std::vector<std::pair<std::string, std::string>>& merges, bool ignore_merges, std::string_view origin);
  BpeModel(const BpeModel&) = delete;
  BpeModel& operator=(const BpeModel&) = delete;

  // Appends the ids of one pre-tokenized piece (raw bytes, not byte-level characters).
  void encode_piece(std::string_view bytes, std::vector<TokenId>& out) const;

  std::optional<TokenId> find(std::string_view token) const { return index_.find(token); }
  // Token strings by id; empty where the vocabulary has no such id.
  const std::vector<std::string>& tokens() const { return tokens_; }

 private:
  struct Merge {
    std::int32_t rank;
    TokenId result;
  };
  static std::uint64_t pair_key(TokenId left, TokenId right) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) | static_cast<std::uint32_t>(right);
  }
  void merge_bytes(std::string_view bytes, std::vector<TokenId>& out) const;

  std::vector<std::string> tokens_;
  TokenIndex index_;
  // Open addressing over (left, right) pairs: one allocation instead of 150k nodes, and one
  // cache miss per lookup in the merge loop.
  class MergeTable {
   public:
    void reserve(std::size_t count);
    // Keeps the first value stored for a key.
    void insert(std::uint64_t key, Merge merge);
    const Merge* find(std::uint64_t key) const;

   private:
    struct Entry {
      std::uint64_t key;  // kEmpty where unused
      Merge merge;
    };
    static constexpr std::uint64_t kEmpty = ~std::uint64_t{0};
    std::size_t slot_of(std::uint64_t key) const { return (key * 0x9E3779B97F4A7C15ull) >> shift_; }
    std::vector<Entry> entries_;
    int shift_ = 64;
  };
  MergeTable merges_;
  std::array<TokenId, 256> byte_token_{};
  bool ignore_merges_;

  // Pieces repeat a lot in real text (words, indentation); the reference caches them too.
  static constexpr std::size_t kCacheCapacity = 1 << 16;
  static constexpr std::size_t kCacheMaxPieceBytes = 64;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<TokenId>, StringHash, std::equal_to<>> cache_;
};

}  // namespace wedlm::tokenizer
