#pragma once
// The `Split` pre-tokenizer's regex, compiled with PCRE2 (UTF, UCP, JIT). The reference library
// uses Oniguruma; the pattern is translated where the two engines differ (see the .cpp).
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace wedlm::tokenizer {

class SplitRegex {
 public:
  // `origin` names the pattern's source in error messages.
  SplitRegex(std::string_view oniguruma_pattern, std::string_view origin);
  SplitRegex(SplitRegex&&) noexcept;
  SplitRegex& operator=(SplitRegex&&) noexcept;
  ~SplitRegex();

  // Splits valid UTF-8 `text` with the "Isolated" behaviour: every match is a piece, and so is
  // every stretch between matches. Pieces are appended to `pieces` in order and cover `text`.
  void split(std::string_view text, std::vector<std::string_view>& pieces) const;

  // The pattern as handed to PCRE2, for diagnostics.
  const std::string& pcre2_pattern() const { return pattern_; }

 private:
  struct Compiled;
  std::string pattern_;
  std::unique_ptr<Compiled> compiled_;
};

// Oniguruma's \s is Unicode White_Space, which includes U+0085 (NEL); PCRE2's \s under UCP does
// not. Rewrites \s and \S so PCRE2 matches what Oniguruma matches.
std::string translate_oniguruma_pattern(std::string_view pattern, std::string_view origin);

}  // namespace wedlm::tokenizer
