#pragma once
// String -> id lookup over a vocabulary held as strings by id: open addressing with the hash
// stored beside the id, so a probe rarely touches a string. Faster to build and query than a
// node-based map for the 150k-entry vocabularies loaded at start-up.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "wedlm/tokenizer.h"

namespace wedlm::tokenizer {

class TokenIndex {
 public:
  // `tokens` (by id; empty strings are gaps) must outlive the index and stay unchanged.
  // Where two ids hold the same string, the higher-numbered position in `order` wins.
  void build(const std::vector<std::string>& tokens, const std::vector<TokenId>& order);
  std::optional<TokenId> find(std::string_view token) const;

 private:
  struct Slot {
    std::uint32_t hash;
    TokenId id;  // -1: empty
  };
  static std::uint64_t hash_of(std::string_view s) { return std::hash<std::string_view>{}(s); }

  const std::vector<std::string>* tokens_ = nullptr;
  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
};

}  // namespace wedlm::tokenizer
