#pragma once
// GPT-2's reversible byte <-> character mapping used by the ByteLevel pre-tokenizer and decoder:
// every byte is shown as a printable character so that BPE tokens are valid strings.
#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace wedlm::tokenizer {

class ByteLevelMap {
 public:
  ByteLevelMap();
  // The character (UTF-8) that stands for `byte`.
  const std::string& byte_to_chars(unsigned char byte) const { return byte_chars_[byte]; }
  // Maps each byte of `bytes` to its character.
  std::string encode(std::string_view bytes) const;
  // The ByteLevel decoder's rule for one token: if every character of `token` stands for a
  // byte, those bytes; otherwise the token's own UTF-8 bytes.
  std::string decode_token(std::string_view token) const;

 private:
  std::array<std::string, 256> byte_chars_;
  std::array<int, 512> char_to_byte_{};  // indexed by code point; -1 where none
};

const ByteLevelMap& byte_level_map();

}  // namespace wedlm::tokenizer
