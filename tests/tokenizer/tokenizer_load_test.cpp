// Loading: the real Qwen3 file, unsupported tokenizer types, malformed files; robustness of
// encode on long inputs.
#include <gtest/gtest.h>

#include "test_paths.h"
#include "tiny_tokenizer.h"
#include "util/error.h"

namespace wedlm {
namespace {

std::string load_error(const std::string& json_text) {
  try {
    Tokenizer::from_json(json_text, "test.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(TokenizerLoad, Qwen3VocabularyAndSpecialTokens) {
  const Tokenizer& tok = test::qwen3_tokenizer();
  EXPECT_EQ(tok.vocab_size(), 151669u);
  EXPECT_EQ(tok.token_to_id("<|endoftext|>"), 151643);
  EXPECT_EQ(tok.token_to_id("<|im_start|>"), 151644);
  EXPECT_EQ(tok.token_to_id("<|im_end|>"), 151645);
  EXPECT_EQ(tok.token_to_id("<think>"), 151667);
  EXPECT_TRUE(tok.is_special(151645));
  EXPECT_FALSE(tok.is_special(151667));  // <think> is an added token, not a special one
  EXPECT_EQ(tok.id_to_token(9707), "Hello");
  EXPECT_FALSE(tok.has_token(151700));
  EXPECT_THROW(tok.id_to_token(151700), Error);
}

TEST(TokenizerLoad, RefusesOtherModelTypes) {
  auto json = test::tiny_tokenizer_json({}, {}, {});
  json["model"] = {{"type", "Unigram"}, {"vocab", nlohmann::json::array()}};
  EXPECT_NE(load_error(json.dump()).find("model type 'Unigram' is not supported"), std::string::npos);
  json["model"] = {{"type", "WordPiece"}, {"vocab", nlohmann::json::object()}};
  EXPECT_NE(load_error(json.dump()).find("'WordPiece'"), std::string::npos);
}

TEST(TokenizerLoad, RefusesSentencePieceStyleBpe) {
  auto json = test::tiny_tokenizer_json({}, {}, {});
  json["model"]["byte_fallback"] = true;
  EXPECT_NE(load_error(json.dump()).find("byte_fallback"), std::string::npos);
  json = test::tiny_tokenizer_json({}, {}, {});
  json["pre_tokenizer"] = {{"type", "Metaspace"}};
  EXPECT_NE(load_error(json.dump()).find("'Metaspace'"), std::string::npos);
  json = test::tiny_tokenizer_json({}, {}, {});
  json["normalizer"] = {{"type", "NFKC"}};
  EXPECT_NE(load_error(json.dump()).find("'NFKC'"), std::string::npos);
}

TEST(TokenizerLoad, ErrorsNameTheSource) {
  EXPECT_NE(load_error("{not json").find("test.json: not valid JSON"), std::string::npos);
  EXPECT_NE(load_error("{}").find("test.json: no 'model'"), std::string::npos);
  auto json = test::tiny_tokenizer_json({}, {"q z"}, {});
  json["model"]["vocab"].erase("q");
  EXPECT_NE(load_error(json.dump()).find("test.json"), std::string::npos);
  try {
    Tokenizer::from_file("/nonexistent/tokenizer.json");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/tokenizer.json"), std::string::npos);
  }
}

TEST(TokenizerEncode, RefusesInvalidUtf8) {
  EXPECT_THROW(test::qwen3_tokenizer().encode("ab\xFF"), Error);
}

TEST(TokenizerEncode, LongRunsDoNotExhaustTheRegexOrBpe) {
  const Tokenizer& tok = test::qwen3_tokenizer();
  for (const std::string& text : {std::string(1 << 20, ' '), std::string(1 << 18, 'a'), std::string(1 << 18, '\n'),
                                  std::string(100000, '7')}) {
    const auto ids = tok.encode(text);
    EXPECT_FALSE(ids.empty());
    EXPECT_EQ(tok.decode(ids), text);
  }
}

}  // namespace
}  // namespace wedlm
