#pragma once
// A hand-made byte-level BPE tokenizer.json: byte b has id b, so expected ids can be written by
// hand from the rules of the reference library.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/byte_level.h"
#include "wedlm/tokenizer.h"

namespace wedlm::test {

struct TinyAddedToken {
  std::string content;
  TokenId id;
  bool special = false, lstrip = false, rstrip = false, single_word = false, normalized = false;
};

inline nlohmann::json tiny_tokenizer_json(const std::vector<std::pair<std::string, TokenId>>& extra_vocab,
                                          const std::vector<std::string>& merges,
                                          const std::vector<TinyAddedToken>& added) {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[tokenizer::byte_level_map().byte_to_chars(static_cast<unsigned char>(b))] = b;
  for (const auto& [token, id] : extra_vocab) vocab[token] = id;
  nlohmann::json added_json = nlohmann::json::array();
  for (const auto& t : added)
    added_json.push_back({{"id", t.id}, {"content", t.content}, {"single_word", t.single_word}, {"lstrip", t.lstrip},
                          {"rstrip", t.rstrip}, {"normalized", t.normalized}, {"special", t.special}});
  return {
      {"version", "1.0"},
      {"added_tokens", added_json},
      {"normalizer", {{"type", "NFC"}}},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"}, {"pattern", {{"Regex", R"(\p{L}+|\p{N}|\s+|[^\s\p{L}\p{N}]+)"}}}, {"behavior", "Isolated"}, {"invert", false}},
          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}}}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}},
  };
}

inline Tokenizer tiny_tokenizer(const std::vector<std::pair<std::string, TokenId>>& extra_vocab,
                                const std::vector<std::string>& merges, const std::vector<TinyAddedToken>& added) {
  return Tokenizer::from_json(tiny_tokenizer_json(extra_vocab, merges, added).dump(), "tiny tokenizer");
}

// Byte ids of plain text in a tiny tokenizer without merges.
inline std::vector<TokenId> bytes_of(std::string_view text) {
  std::vector<TokenId> ids;
  for (unsigned char c : text) ids.push_back(c);
  return ids;
}

inline std::vector<TokenId> concat(std::initializer_list<std::vector<TokenId>> parts) {
  std::vector<TokenId> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

}  // namespace wedlm::test
