#include "tokenizer/added_vocabulary.h"

#include <algorithm>

#include "tokenizer/unicode_props.h"
#include "tokenizer/utf8.h"

namespace wedlm::tokenizer {

AddedTokenMatcher::AddedTokenMatcher(const std::vector<AddedToken>& tokens, bool normalized) {
  for (const AddedToken& token : tokens)
    if (token.normalized == normalized && !token.content.empty()) tokens_.push_back(token);
  for (std::size_t i = 0; i < tokens_.size(); ++i)
    by_first_byte_[static_cast<unsigned char>(tokens_[i].content[0])].push_back(i);
  for (auto& candidates : by_first_byte_)
    std::stable_sort(candidates.begin(), candidates.end(),
                     [&](std::size_t a, std::size_t b) { return tokens_[a].content.size() > tokens_[b].content.size(); });
}

void AddedTokenMatcher::split(std::string_view text, bool parse_special, std::vector<Segment>& out) const {
  std::size_t emitted = 0;  // end of the last stretch appended to `out`
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto& candidates = by_first_byte_[static_cast<unsigned char>(text[pos])];
    const AddedToken* found = nullptr;
    for (std::size_t index : candidates) {
      const AddedToken& token = tokens_[index];
      if (text.compare(pos, token.content.size(), token.content) == 0) {
        found = &token;  // candidates are longest first: this is the leftmost-longest match
        break;
      }
    }
    if (found == nullptr) {
      ++pos;
      continue;
    }
    std::size_t start = pos, stop = pos + found->content.size();
    pos = stop;  // matches never overlap, even when this one is discarded below
    if (!parse_special && found->special) continue;
    if (found->single_word) {
      const bool word_before = start > 0 && is_word_character(last_code_point(text.substr(0, start)));
      const bool word_after = stop < text.size() && is_word_character(first_code_point(text.substr(stop)));
      if (word_before || word_after) continue;
    }
    if (found->lstrip) {
      std::size_t new_start = start;
      while (new_start > emitted) {
        std::size_t prev = new_start - 1;
        while (prev > 0 && (static_cast<unsigned char>(text[prev]) & 0xC0) == 0x80) --prev;
        std::size_t cursor = prev;
        if (!is_unicode_whitespace(next_code_point(text, cursor))) break;
        new_start = prev;
      }
      start = new_start;
    }
    if (found->rstrip) {
      while (stop < text.size()) {
        std::size_t cursor = stop;
        if (!is_unicode_whitespace(next_code_point(text, cursor))) break;
        stop = cursor;
      }
      pos = stop;
    }
    if (start > emitted) out.push_back({text.substr(emitted, start - emitted), -1});
    out.push_back({text.substr(start, stop - start), found->id});
    emitted = stop;
  }
  if (emitted < text.size()) out.push_back({text.substr(emitted), -1});
}

}  // namespace wedlm::tokenizer
