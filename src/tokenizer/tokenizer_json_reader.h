#pragma once
// Reads tokenizer.json in one SAX pass. The vocabulary (150k entries) and merges (150k pairs)
// stream straight into flat vectors; only the small rest of the document becomes a JSON tree.
// This keeps loading the 11 MB Qwen file well under the 300 ms budget.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "wedlm/tokenizer.h"

namespace wedlm::tokenizer {

struct TokenizerJson {
  nlohmann::json document;  // everything except model.vocab and model.merges
  bool has_vocab = false;
  bool has_merges = false;
  std::vector<std::pair<std::string, TokenId>> vocab;          // model.vocab, in file order
  std::vector<std::pair<std::string, std::string>> merges;     // model.merges, in rank order
};

// Throws wedlm::Error naming `origin` on malformed JSON or a malformed vocab/merges entry.
TokenizerJson read_tokenizer_json(std::string_view text, std::string_view origin);

}  // namespace wedlm::tokenizer
