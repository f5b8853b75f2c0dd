// Added-token options and BPE merge order on a hand-made tokenizer, with expectations derived by
// hand from the reference library's rules.
#include <gtest/gtest.h>

#include "tiny_tokenizer.h"

namespace wedlm {
namespace {

using test::bytes_of;
using test::concat;
using test::tiny_tokenizer;

TEST(BpeMerges, LowestRankMergesFirst) {
  // "xyz" with merges [y z, x y, xy z]: y+z merges first, and no merge joins x with yz.
  const Tokenizer yz_first = tiny_tokenizer({{"xy", 260}, {"yz", 261}, {"xyz", 262}}, {"y z", "x y", "xy z"}, {});
  EXPECT_EQ(yz_first.encode("xyz"), (std::vector<TokenId>{'x', 261}));
  const Tokenizer xy_first = tiny_tokenizer({{"xy", 260}, {"yz", 261}, {"xyz", 262}}, {"x y", "y z", "xy z"}, {});
  EXPECT_EQ(xy_first.encode("xyz"), (std::vector<TokenId>{262}));
  // Equal ranks resolve leftmost first: "aaa" with merge "a a" gives aa, a.
  const Tokenizer aa = tiny_tokenizer({{"aa", 263}}, {"a a"}, {});
  EXPECT_EQ(aa.encode("aaa"), (std::vector<TokenId>{263, 'a'}));
  EXPECT_EQ(aa.encode("aaaa"), (std::vector<TokenId>{263, 263}));
}

TEST(BpeMerges, MergesArePerPreTokenizedPiece) {
  const Tokenizer t = tiny_tokenizer({{"ab", 260}}, {"a b"}, {});
  EXPECT_EQ(t.encode("ab ab"), (std::vector<TokenId>{260, ' ', 260}));
  EXPECT_EQ(t.encode("a,b"), (std::vector<TokenId>{'a', ',', 'b'}));
}

TEST(AddedTokens, LeftmostLongestMatch) {
  const Tokenizer t = tiny_tokenizer({}, {}, {{"ab", 300}, {"abc", 301}, {"bcd", 302}});
  EXPECT_EQ(t.encode("abcd"), (std::vector<TokenId>{301, 'd'}));
  EXPECT_EQ(t.encode("xbcd"), (std::vector<TokenId>{'x', 302}));
  EXPECT_EQ(t.encode("abab"), (std::vector<TokenId>{300, 300}));
}

TEST(AddedTokens, LstripAndRstripSwallowWhitespace) {
  test::TinyAddedToken left{"<l>", 300};
  left.lstrip = true;
  test::TinyAddedToken right{"<r>", 301};
  right.rstrip = true;
  const Tokenizer t = tiny_tokenizer({}, {}, {left, right});
  EXPECT_EQ(t.encode("x \t <l> y"), concat({bytes_of("x"), {300}, bytes_of(" y")}));
  EXPECT_EQ(t.encode("x <r> \n y"), concat({bytes_of("x "), {301}, bytes_of("y")}));
  // lstrip does not reach into what an earlier token already took.
  EXPECT_EQ(t.encode("<r>  <l>"), (std::vector<TokenId>{301, 300}));
}

TEST(AddedTokens, SingleWordNeedsNonWordNeighbours) {
  test::TinyAddedToken word{"tok", 300};
  word.single_word = true;
  const Tokenizer t = tiny_tokenizer({}, {}, {word});
  EXPECT_EQ(t.encode("tok"), (std::vector<TokenId>{300}));
  EXPECT_EQ(t.encode("a tok."), concat({bytes_of("a "), {300}, bytes_of(".")}));
  EXPECT_EQ(t.encode("atok"), bytes_of("atok"));
  EXPECT_EQ(t.encode("tok_"), bytes_of("tok_"));
  EXPECT_EQ(t.encode("\xC3\xA9tok"), bytes_of("\xC3\xA9tok"));  // é is a word character
}

TEST(AddedTokens, NormalizedTokensMatchAfterNfc) {
  test::TinyAddedToken composed{"\xC3\xA9", 300};  // é, matched in NFC text
  composed.normalized = true;
  test::TinyAddedToken raw{"\xC3\x85", 301};  // Å, matched in the raw text only
  const Tokenizer t = tiny_tokenizer({}, {}, {composed, raw});
  EXPECT_EQ(t.encode("e\xCC\x81"), (std::vector<TokenId>{300}));
  EXPECT_EQ(t.encode("\xC3\x85"), (std::vector<TokenId>{301}));
  EXPECT_EQ(t.encode("A\xCC\x8A"), bytes_of("\xC3\x85"));  // NFC makes Å after matching raw tokens
}

TEST(AddedTokens, SpecialTokensCanBeReadAsText) {
  test::TinyAddedToken special{"<s>", 300};
  special.special = true;
  const Tokenizer t = tiny_tokenizer({}, {}, {special, {"<t>", 301}});
  EXPECT_EQ(t.encode("<s><t>", true), (std::vector<TokenId>{300, 301}));
  EXPECT_EQ(t.encode("<s><t>", false), concat({bytes_of("<s>"), {301}}));
  EXPECT_TRUE(t.is_special(300));
  EXPECT_FALSE(t.is_special(301));
  EXPECT_EQ(t.decode(std::vector<TokenId>{300, 'a', 301}, true), "a<t>");
}

}  // namespace
}  // namespace wedlm
