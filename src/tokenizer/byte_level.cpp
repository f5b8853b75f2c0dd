#include "tokenizer/byte_level.h"

#include "tokenizer/utf8.h"

namespace wedlm::tokenizer {

ByteLevelMap::ByteLevelMap() {
  char_to_byte_.fill(-1);
  // Printable Latin-1 bytes stand for themselves; the others take code points 256, 257, ...
  // in byte order.
  auto printable = [](int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); };
  int next_extra = 256;
  for (int b = 0; b < 256; ++b) {
    const int cp = printable(b) ? b : next_extra++;
    append_code_point(byte_chars_[b], static_cast<char32_t>(cp));
    char_to_byte_[cp] = b;
  }
}

std::string ByteLevelMap::encode(std::string_view bytes) const {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) out += byte_chars_[b];
  return out;
}

std::string ByteLevelMap::decode_token(std::string_view token) const {
  std::string bytes;
  bytes.reserve(token.size());
  std::size_t pos = 0;
  while (pos < token.size()) {
    const char32_t cp = next_code_point(token, pos);
    if (cp >= char_to_byte_.size() || char_to_byte_[cp] < 0) return std::string(token);
    bytes.push_back(static_cast<char>(char_to_byte_[cp]));
  }
  return bytes;
}

const ByteLevelMap& byte_level_map() {
  static const ByteLevelMap map;
  return map;
}

}  // namespace wedlm::tokenizer
