#pragma once
// Committed token ids -> text for a caller, with OpenAI-style stop strings: the text ends just
// before the first stop string, and bytes that might be the start of a stop string are held
// back until the next tokens decide.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "wedlm/tokenizer.h"

namespace wedlm {

class TextStream {
 public:
  TextStream(const Tokenizer& tokenizer, std::vector<std::string> stop_strings, bool skip_special = true);

  // Takes the ids committed by one step and returns the text that is now safe to show.
  std::string push(std::span<const std::int32_t> ids);
  // True once a stop string appeared; later pushes return nothing.
  bool stopped() const { return stopped_; }
  // Returns whatever was held back (nothing past a stop string).
  std::string finish();
  // All text shown so far plus what finish() returns: the completion's text.
  const std::string& text() const { return text_; }

 private:
  std::string take_safe_prefix();

  StreamingDetokenizer detokenizer_;
  std::vector<std::string> stops_;
  std::size_t longest_stop_ = 0;
  std::string text_;         // decoded text, truncated at a stop string once found
  std::size_t emitted_ = 0;  // bytes of text_ already returned
  bool stopped_ = false;
};

}  // namespace wedlm
