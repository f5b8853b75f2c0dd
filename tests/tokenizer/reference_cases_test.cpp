// Every case of tests/fixtures/tokenizer/encode_cases.json, produced by Hugging Face `tokenizers`
// (tools/make_tokenizer_fixtures.py), must be reproduced exactly.
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_paths.h"
#include "tokenizer/utf8.h"

namespace wedlm {
namespace {

const nlohmann::json& encode_fixture() {
  static const nlohmann::json fixture = [] {
    std::ifstream in(test::tokenizer_fixtures_dir() / "encode_cases.json");
    if (!in) throw std::runtime_error("missing encode_cases.json");
    return nlohmann::json::parse(in);
  }();
  return fixture;
}

std::string label(const nlohmann::json& c, std::size_t i) {
  return "case " + std::to_string(i) + " (" + c["category"].get<std::string>() + "): " + c["text"].dump();
}

TEST(ReferenceCases, FixtureIsLargeAndVaried) {
  const auto& cases = encode_fixture()["cases"];
  EXPECT_GE(cases.size(), 300u);
  EXPECT_EQ(encode_fixture()["meta"]["tokenizers_version"].get<std::string>().substr(0, 4), "0.23");
}

TEST(ReferenceCases, EncodeMatchesReference) {
  const Tokenizer& tok = test::qwen3_tokenizer();
  const auto& cases = encode_fixture()["cases"];
  std::size_t failures = 0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const auto expected = c["ids"].get<std::vector<TokenId>>();
    const auto ids = tok.encode(c["text"].get<std::string>());
    EXPECT_EQ(ids, expected) << label(c, i);
    failures += ids != expected;
  }
  EXPECT_EQ(failures, 0u);
}

TEST(ReferenceCases, EncodeWithSpecialTokensAsTextMatchesReference) {
  const Tokenizer& tok = test::qwen3_tokenizer();
  const auto& cases = encode_fixture()["cases"];
  std::size_t differing = 0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const auto& expected = c.contains("ids_special_as_text") ? c["ids_special_as_text"] : c["ids"];
    differing += c.contains("ids_special_as_text");
    EXPECT_EQ(tok.encode(c["text"].get<std::string>(), false), expected.get<std::vector<TokenId>>()) << label(c, i);
  }
  EXPECT_GT(differing, 20u);  // the corpus does exercise special tokens
}

TEST(ReferenceCases, DecodeMatchesReferenceAndRoundTrips) {
  const Tokenizer& tok = test::qwen3_tokenizer();
  for (const auto& c : encode_fixture()["cases"]) {
    const auto ids = c["ids"].get<std::vector<TokenId>>();
    const auto text = c["text"].get<std::string>();
    const auto decoded = tok.decode(ids);
    EXPECT_EQ(decoded, c["decoded"].get<std::string>()) << c["text"].dump();
    EXPECT_EQ(tok.decode(ids, true), c["decoded_skip_special"].get<std::string>()) << c["text"].dump();
    // decode(encode(s)) == s for text already in NFC; the reference shows which texts NFC changes.
    if (c["decoded"] == c["text"]) {
      EXPECT_EQ(tok.decode(tok.encode(text)), text);
    }
  }
}

TEST(ReferenceCases, DecodeOfArbitraryIdsMatchesReference) {
  const Tokenizer& tok = test::qwen3_tokenizer();
  for (const auto& c : encode_fixture()["decode_only"]) {
    const auto ids = c["ids"].get<std::vector<TokenId>>();
    EXPECT_EQ(tok.decode(ids), c["decoded"].get<std::string>()) << c["ids"].dump();
    EXPECT_EQ(tok.decode(ids, true), c["decoded_skip_special"].get<std::string>()) << c["ids"].dump();
  }
}

TEST(ReferenceCases, StreamingDetokenizerConcatenatesToDecode) {
  const Tokenizer& tok = test::qwen3_tokenizer();
  auto check = [&](const std::vector<TokenId>& ids, bool skip_special, const std::string& expected) {
    StreamingDetokenizer stream(tok, skip_special);
    std::string text;
    for (TokenId id : ids) {
      const std::string piece = stream.push(id);
      // Nothing emitted may end inside a UTF-8 sequence.
      EXPECT_EQ(tokenizer::valid_utf8_prefix(piece), piece.size());
      text += piece;
    }
    text += stream.flush();
    EXPECT_EQ(text, expected);
  };
  for (const auto& c : encode_fixture()["cases"]) {
    const auto ids = c["ids"].get<std::vector<TokenId>>();
    check(ids, false, c["decoded"].get<std::string>());
    check(ids, true, c["decoded_skip_special"].get<std::string>());
  }
  for (const auto& c : encode_fixture()["decode_only"]) {
    check(c["ids"].get<std::vector<TokenId>>(), false, c["decoded"].get<std::string>());
    check(c["ids"].get<std::vector<TokenId>>(), true, c["decoded_skip_special"].get<std::string>());
  }
}

}  // namespace
}  // namespace wedlm
