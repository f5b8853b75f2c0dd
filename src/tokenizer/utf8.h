#pragma once
// UTF-8 validation and lossy conversion with the replacement rule of Rust's
// String::from_utf8_lossy, which the reference ByteLevel decoder applies to decoded bytes.
#include <cstddef>
#include <string>
#include <string_view>

namespace wedlm::tokenizer {

// Length of the well-formed prefix of `bytes` (== bytes.size() when all of it is valid).
std::size_t valid_utf8_prefix(std::string_view bytes);

// Appends `bytes` to `out`, replacing each maximal ill-formed subsequence by U+FFFD.
// With `final` false, a trailing sequence that is incomplete but could still become valid is not
// appended; the return value is the number of such trailing bytes (0 when `final`).
std::size_t append_utf8_lossy(std::string_view bytes, std::string& out, bool final);

// Decodes one code point from valid UTF-8 at `pos`, advancing `pos`.
char32_t next_code_point(std::string_view text, std::size_t& pos);

void append_code_point(std::string& out, char32_t cp);

}  // namespace wedlm::tokenizer
