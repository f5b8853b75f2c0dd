#include "tokenizer/utf8.h"
#include "wedlm/tokenizer.h"

namespace wedlm {

using tokenizer::append_utf8_lossy;

StreamingDetokenizer::StreamingDetokenizer(const Tokenizer& tokenizer, bool skip_special)
    : tokenizer_(&tokenizer), skip_special_(skip_special) {}

std::string StreamingDetokenizer::push(TokenId id) {
  if (skip_special_ && tokenizer_->is_special(id)) return {};
  pending_ += tokenizer_->token_bytes(id);
  std::string text;
  const std::size_t held = append_utf8_lossy(pending_, text, false);
  pending_.erase(0, pending_.size() - held);
  return text;
}

std::string StreamingDetokenizer::flush() {
  std::string text;
  append_utf8_lossy(pending_, text, true);
  pending_.clear();
  return text;
}

}  // namespace wedlm
