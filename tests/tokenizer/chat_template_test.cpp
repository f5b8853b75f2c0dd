// Conversations rendered by transformers' apply_chat_template (tests/fixtures/tokenizer/
// chat_cases.json) must be reproduced exactly, and unknown templates refused.
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_paths.h"
#include "util/error.h"
#include "wedlm/chat_template.h"

namespace wedlm {
namespace {

using nlohmann::ordered_json;

const ordered_json& chat_fixture() {
  static const ordered_json fixture = [] {
    std::ifstream in(test::tokenizer_fixtures_dir() / "chat_cases.json");
    if (!in) throw std::runtime_error("missing chat_cases.json");
    return ordered_json::parse(in);
  }();
  return fixture;
}

TEST(ChatTemplate, RecognisesTheQwen3Template) {
  const ChatTemplate chat = ChatTemplate::from_model_dir(test::qwen3_tokenizer_dir());
  EXPECT_EQ(chat.family(), "qwen3");
  EXPECT_EQ(chat_fixture()["meta"]["renderer"], "transformers.apply_chat_template");
  EXPECT_EQ(chat_fixture()["meta"]["loaded_template_matches_config"], true);
}

TEST(ChatTemplate, RendersLikeTransformers) {
  const ChatTemplate chat = ChatTemplate::from_model_dir(test::qwen3_tokenizer_dir());
  const Tokenizer& tok = test::qwen3_tokenizer();
  const auto& cases = chat_fixture()["cases"];
  EXPECT_GE(cases.size(), 25u);
  for (const auto& c : cases) {
    ChatTemplateOptions options;
    options.add_generation_prompt = c["add_generation_prompt"].get<bool>();
    if (c.contains("enable_thinking")) options.enable_thinking = c["enable_thinking"].get<bool>();
    const ordered_json tools = c.contains("tools") ? c["tools"] : ordered_json();
    const std::string rendered = chat.render(c["messages"], tools, options);
    EXPECT_EQ(rendered, c["rendered"].get<std::string>()) << c["name"];
    EXPECT_EQ(tok.encode(rendered), c["ids"].get<std::vector<TokenId>>()) << c["name"];
  }
}

TEST(ChatTemplate, RefusesUnknownTemplates) {
  try {
    ChatTemplate::from_text("{% for m in messages %}{{ m.content }}{% endfor %}", "custom.jinja");
    ADD_FAILURE() << "an unknown template was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("custom.jinja: unrecognised chat template"), std::string::npos);
  }
}

TEST(ChatTemplate, RejectsMalformedConversations) {
  const ChatTemplate chat = ChatTemplate::from_model_dir(test::qwen3_tokenizer_dir());
  const ChatTemplateOptions options;
  EXPECT_THROW(chat.render(ordered_json::array(), nullptr, options), Error);
  EXPECT_THROW(chat.render(ordered_json::parse(R"([{"content": "no role"}])"), nullptr, options), Error);
  EXPECT_THROW(chat.render(ordered_json::parse(R"([{"role": "user"}])"), nullptr, options), Error);
  EXPECT_THROW(chat.render(ordered_json::parse(R"([{"role": "user", "content": [{"type": "text"}]}])"), nullptr, options),
               Error);
  EXPECT_THROW(chat.render(ordered_json::parse(R"([{"role": "user", "content": "x"}])"), ordered_json::object(), options),
               Error);
}

TEST(ChatStopTokens, EosIdsThenImEndAndEndOfText) {
  const Tokenizer& tok = test::qwen3_tokenizer();
  const std::vector<TokenId> eos{151645, 151643};
  EXPECT_EQ(default_chat_stop_ids(tok, eos), (std::vector<TokenId>{151645, 151643}));
  const std::vector<TokenId> other{7};
  EXPECT_EQ(default_chat_stop_ids(tok, other), (std::vector<TokenId>{7, 151645, 151643}));
  EXPECT_EQ(default_chat_stop_ids(tok, {}), (std::vector<TokenId>{151645, 151643}));
}

}  // namespace
}  // namespace wedlm
