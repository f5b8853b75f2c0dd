// Lossy UTF-8 conversion follows Rust's String::from_utf8_lossy (one U+FFFD per maximal
// ill-formed subsequence), which is what the reference decoder emits.
#include <gtest/gtest.h>

#include "tokenizer/utf8.h"
#include "wedlm/tokenizer.h"
#include "test_paths.h"

namespace wedlm::tokenizer {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

std::string lossy(std::string_view bytes) {
  std::string out;
  append_utf8_lossy(bytes, out, true);
  return out;
}

TEST(Utf8Lossy, ValidTextIsUnchanged) {
  EXPECT_EQ(lossy("plain ascii"), "plain ascii");
  EXPECT_EQ(lossy("\xE4\xB8\xAD\xF0\x9F\x98\x80"), "\xE4\xB8\xAD\xF0\x9F\x98\x80");
  EXPECT_EQ(lossy(std::string("a\0b", 3)), std::string("a\0b", 3));
}

TEST(Utf8Lossy, MaximalSubpartsBecomeOneReplacementEach) {
  EXPECT_EQ(lossy("\x80"), kFffd);
  EXPECT_EQ(lossy("a\xC0\x80z"), "a" + kFffd + kFffd + "z");        // C0 is never valid
  EXPECT_EQ(lossy("\xE4\xB8"), kFffd);                                 // truncated at the end
  EXPECT_EQ(lossy("\xE4\xB8z"), kFffd + "z");                          // truncated in the middle
  EXPECT_EQ(lossy("\xED\xA0\x80"), kFffd + kFffd + kFffd);             // surrogate: ED then A0 fails
  EXPECT_EQ(lossy("\xF0\x9F\x98"), kFffd);
  EXPECT_EQ(lossy("\xF4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);  // above U+10FFFF
  EXPECT_EQ(lossy("\xFF\xFE"), kFffd + kFffd);
}

TEST(Utf8Lossy, IncompleteTailIsHeldBackUnlessFinal) {
  std::string out;
  EXPECT_EQ(append_utf8_lossy("ab\xF0\x9F", out, false), 2u);
  EXPECT_EQ(out, "ab");
  out.clear();
  EXPECT_EQ(append_utf8_lossy("ab\x80", out, false), 0u);  // can never become valid
  EXPECT_EQ(out, "ab" + kFffd);
}

TEST(Utf8Validation, PrefixStopsAtFirstIllFormedByte) {
  EXPECT_EQ(valid_utf8_prefix("abc"), 3u);
  EXPECT_EQ(valid_utf8_prefix("ab\xE4\xB8"), 2u);
  EXPECT_EQ(valid_utf8_prefix("\xC3\xA9\xFF"), 2u);
}

TEST(StreamingDetokenizer, HoldsSplitSequencesAndLosesNoByte) {
  const Tokenizer& tok = test::qwen3_tokenizer();
  // "中" is E4 B8 AD; the byte-level tokens for E4, B8 and AD arrive one at a time.
  const TokenId e4 = *tok.token_to_id("\xC3\xA4"), b8 = *tok.token_to_id("\xC2\xB8"), ad = *tok.token_to_id("\xC5\x83");
  StreamingDetokenizer stream(tok);
  EXPECT_EQ(stream.push(e4), "");
  EXPECT_EQ(stream.push(b8), "");
  EXPECT_EQ(stream.push(ad), "\xE4\xB8\xAD");
  EXPECT_EQ(stream.push(e4), "");
  EXPECT_EQ(stream.flush(), kFffd);  // an unfinished sequence is not dropped
  EXPECT_EQ(stream.flush(), "");
}

TEST(StreamingDetokenizer, SkipsSpecialTokensWhenAsked) {
  const Tokenizer& tok = test::qwen3_tokenizer();
  const auto ids = tok.encode("<|im_start|>hi<|im_end|>");
  StreamingDetokenizer skipping(tok, true), keeping(tok, false);
  std::string skipped, kept;
  for (TokenId id : ids) {
    skipped += skipping.push(id);
    kept += keeping.push(id);
  }
  EXPECT_EQ(skipped + skipping.flush(), "hi");
  EXPECT_EQ(kept + keeping.flush(), "<|im_start|>hi<|im_end|>");
}

}  // namespace
}  // namespace wedlm::tokenizer
