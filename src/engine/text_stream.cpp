#include "engine/text_stream.h"

#include <algorithm>

#include "util/error.h"

namespace wedlm {

TextStream::TextStream(const Tokenizer& tokenizer, std::vector<std::string> stop_strings, bool skip_special)
    : detokenizer_(tokenizer, skip_special), stops_(std::move(stop_strings)) {
  for (const std::string& s : stops_) {
    if (s.empty()) fail("a stop string must not be empty");
    longest_stop_ = std::max(longest_stop_, s.size());
  }
}

std::string TextStream::push(std::span<const std::int32_t> ids) {
  if (stopped_) return {};
  const std::size_t before = text_.size();
  for (std::int32_t id : ids) text_ += detokenizer_.push(id);
  if (!stops_.empty() && text_.size() > before) {
    // A stop string that ends in the new text may start up to longest-1 bytes earlier.
    const std::size_t from = before >= longest_stop_ ? before - (longest_stop_ - 1) : 0;
    std::size_t cut = std::string::npos;
    for (const std::string& s : stops_) cut = std::min(cut, text_.find(s, from));
    if (cut != std::string::npos) {
      text_.resize(cut);
      stopped_ = true;
    }
  }
  return take_safe_prefix();
}

std::string TextStream::take_safe_prefix() {
  std::size_t safe = text_.size();
  if (!stopped_ && longest_stop_ > 1) {
    // Hold back a tail that is a proper prefix of some stop string.
    for (std::size_t keep = std::min(longest_stop_ - 1, text_.size()); keep > 0; --keep) {
      std::string_view tail(text_.data() + text_.size() - keep, keep);
      bool is_prefix = std::any_of(stops_.begin(), stops_.end(),
                                   [&](const std::string& s) { return s.size() > keep && s.compare(0, keep, tail) == 0; });
      if (is_prefix) {
        safe = text_.size() - keep;
        break;
      }
    }
  }
  safe = std::max(safe, emitted_);
  std::string out = text_.substr(emitted_, safe - emitted_);
  emitted_ = safe;
  return out;
}

std::string TextStream::finish() {
  if (!stopped_) {
    text_ += detokenizer_.flush();
    for (const std::string& s : stops_) {
      std::size_t cut = text_.find(s, emitted_ >= longest_stop_ ? emitted_ - longest_stop_ : 0);
      if (cut != std::string::npos && cut < text_.size()) {
        text_.resize(std::max(cut, emitted_));
        stopped_ = true;
      }
    }
  }
  std::string out = text_.substr(std::min(emitted_, text_.size()));
  emitted_ = text_.size();
  return out;
}

}  // namespace wedlm
