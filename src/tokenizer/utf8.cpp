#include "tokenizer/utf8.h"

namespace wedlm::tokenizer {
namespace {

struct Utf8Step {
  std::size_t length;  // bytes of the sequence, or of the ill-formed / truncated part
  bool valid;
  bool truncated;  // ill-formed only because the input ended
};

// Examines the sequence at `p` following the Unicode table of well-formed byte sequences.
Utf8Step utf8_step(const unsigned char* p, std::size_t available) {
  const unsigned lead = p[0];
  if (lead < 0x80) return {1, true, false};
  std::size_t continuation;
  unsigned lo = 0x80, hi = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    continuation = 1;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    continuation = 2;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    continuation = 3;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  } else {
    return {1, false, false};
  }
  for (std::size_t i = 1; i <= continuation; ++i) {
    if (i >= available) return {i, false, true};
    const unsigned byte = p[i];
    const unsigned min = i == 1 ? lo : 0x80, max = i == 1 ? hi : 0xBF;
    if (byte < min || byte > max) return {i, false, false};
  }
  return {continuation + 1, true, false};
}

}  // namespace

std::size_t valid_utf8_prefix(std::string_view bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    if (p[pos] < 0x80) {
      ++pos;
      continue;
    }
    const Utf8Step step = utf8_step(p + pos, bytes.size() - pos);
    if (!step.valid) return pos;
    pos += step.length;
  }
  return pos;
}

std::size_t append_utf8_lossy(std::string_view bytes, std::string& out, bool final) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  std::size_t pos = 0, run_start = 0;
  while (pos < bytes.size()) {
    if (p[pos] < 0x80) {
      ++pos;
      continue;
    }
    const Utf8Step step = utf8_step(p + pos, bytes.size() - pos);
    if (step.valid) {
      pos += step.length;
      continue;
    }
    out.append(bytes.substr(run_start, pos - run_start));
    if (step.truncated && !final) return bytes.size() - pos;
    out.append(kReplacement);
    pos += step.length;
    run_start = pos;
  }
  out.append(bytes.substr(run_start));
  return 0;
}

char32_t next_code_point(std::string_view text, std::size_t& pos) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data()) + pos;
  const unsigned lead = p[0];
  if (lead < 0x80) {
    pos += 1;
    return lead;
  }
  if (lead < 0xE0) {
    pos += 2;
    return ((lead & 0x1F) << 6) | (p[1] & 0x3F);
  }
  if (lead < 0xF0) {
    pos += 3;
    return ((lead & 0x0F) << 12) | ((p[1] & 0x3F) << 6) | (p[2] & 0x3F);
  }
  pos += 4;
  return ((lead & 0x07) << 18) | ((p[1] & 0x3F) << 12) | ((p[2] & 0x3F) << 6) | (p[3] & 0x3F);
}

void append_code_point(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace wedlm::tokenizer
