#pragma once
// Character classes the reference library tests with Rust's regex crate (\s, \w) and the NFC
// normalizer, on top of utf8proc.
#include <string>
#include <string_view>

namespace wedlm::tokenizer {

// Unicode White_Space (Rust's \s).
bool is_unicode_whitespace(char32_t cp);
// Rust's \w: alphabetic, marks, decimal digits, connector punctuation, joiners.
bool is_word_character(char32_t cp);

// The last / first code point of valid UTF-8 `text` (which must not be empty).
char32_t last_code_point(std::string_view text);
char32_t first_code_point(std::string_view text);

// Unicode NFC of valid UTF-8 `text`.
std::string nfc(std::string_view text);

}  // namespace wedlm::tokenizer
