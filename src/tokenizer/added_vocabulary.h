#pragma once
// Added tokens (special or not) are found in the text before any normalization or
// pre-tokenization, as in the reference: leftmost-longest matching over all added tokens,
// with the lstrip / rstrip / single_word options. Tokens with `normalized` true are matched in
// the normalized text instead.
#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "wedlm/tokenizer.h"

namespace wedlm::tokenizer {

struct AddedToken {
  std::string content;
  TokenId id;
  bool special;
  bool lstrip;
  bool rstrip;
  bool single_word;
  bool normalized;
};

// A stretch of text: either an added token (id >= 0) or plain text to tokenize (id < 0).
struct Segment {
  std::string_view text;
  TokenId id;
};

class AddedTokenMatcher {
 public:
  // Keeps the tokens of `tokens` whose `normalized` flag equals `normalized`.
  AddedTokenMatcher(const std::vector<AddedToken>& tokens, bool normalized);

  // Splits `text` into plain stretches and added tokens (the stretch a token covers includes
  // whitespace it strips). With `parse_special` false, special tokens are found but skipped, as
  // the reference's encode_special_tokens does.
  void split(std::string_view text, bool parse_special, std::vector<Segment>& out) const;

  bool empty() const { return tokens_.empty(); }

 private:
  std::vector<AddedToken> tokens_;
  std::array<std::vector<std::size_t>, 256> by_first_byte_;  // indices into tokens_, longest first
};

}  // namespace wedlm::tokenizer
