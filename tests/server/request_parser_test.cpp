// Request bodies -> parameters, and every 400 a body can cause, without a model.
#include "server/request_parser.h"

#include <gtest/gtest.h>

#include "server/api_error.h"

namespace wedlm::server {
namespace {

// The error a body causes: status, param, and that the message mentions `words`.
void expect_error(const std::string& body, Endpoint endpoint, const std::string& param, const std::string& words) {
  try {
    parse_request(body, endpoint);
    ADD_FAILURE() << "accepted: " << body;
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400) << body;
    const auto json = e.body();
    EXPECT_EQ(json["error"]["type"], "invalid_request_error") << body;
    if (param.empty()) {
      EXPECT_TRUE(json["error"]["param"].is_null()) << body;
    } else {
      EXPECT_EQ(json["error"]["param"], param) << body;
    }
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
  }
}

TEST(RequestParser, CompletionFieldsAndDefaults) {
  ParsedRequest r = parse_request(R"({"model": "m", "prompt": "hi"})", Endpoint::completions);
  EXPECT_EQ(r.model, "m");
  EXPECT_EQ(r.prompt_text, "hi");
  EXPECT_FALSE(r.max_tokens);
  EXPECT_FALSE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.generate.mode, DecodeMode::wedlm);
  EXPECT_EQ(r.generate.sampling.temperature, 0.0);

  r = parse_request(R"({"prompt": [1, 2, 3], "max_tokens": 7, "temperature": 0.5, "top_p": 0.9, "top_k": 40,
    "seed": 11, "stop": ["a", "bc"], "stream": true, "stream_options": {"include_usage": false}, "n": 1,
    "wedlm_window": 8, "wedlm_entropy_threshold": 0.3, "wedlm_pos_penalty": 0.05, "mode": "ar",
    "ignore_eos": true, "return_token_ids": true, "presence_penalty": 0, "logprobs": null})",
                    Endpoint::completions);
  EXPECT_FALSE(r.prompt_text);
  EXPECT_EQ(r.prompt_ids, (std::vector<std::int32_t>{1, 2, 3}));
  EXPECT_EQ(r.max_tokens, 7);
  EXPECT_EQ(r.generate.sampling.temperature, 0.5);
  EXPECT_EQ(r.generate.sampling.top_p, 0.9);
  EXPECT_EQ(r.generate.sampling.top_k, 40);
  EXPECT_EQ(r.generate.sampling.seed, 11u);
  EXPECT_EQ(r.stop_strings, (std::vector<std::string>{"a", "bc"}));
  EXPECT_TRUE(r.stream);
  EXPECT_FALSE(r.include_usage);
  EXPECT_EQ(r.generate.wedlm.window, 8);
  EXPECT_EQ(r.generate.wedlm.entropy_threshold, 0.3);
  EXPECT_EQ(r.generate.wedlm.position_penalty, 0.05);
  EXPECT_EQ(r.generate.mode, DecodeMode::ar);
  EXPECT_TRUE(r.generate.ignore_eos);
  EXPECT_TRUE(r.return_token_ids);
}

TEST(RequestParser, PromptForms) {
  EXPECT_EQ(parse_request(R"({"prompt": ["one"]})", Endpoint::completions).prompt_text, "one");
  EXPECT_EQ(parse_request(R"({"prompt": [[4, 5]]})", Endpoint::completions).prompt_ids, (std::vector<std::int32_t>{4, 5}));
  EXPECT_EQ(parse_request(R"({"prompt": "x", "stop": "END"})", Endpoint::completions).stop_strings,
            std::vector<std::string>{"END"});
  EXPECT_EQ(parse_request(R"({"prompt": "x", "max_completion_tokens": 3})", Endpoint::completions).max_tokens, 3);
  EXPECT_EQ(parse_request(R"({"prompt": "x", "top_k": -1})", Endpoint::completions).generate.sampling.top_k, 0);
  EXPECT_EQ(parse_request(R"({"prompt": "x", "max_tokens": 5.0})", Endpoint::completions).max_tokens, 5);
}

TEST(RequestParser, ChatMessagesToolsAndContentParts) {
  ParsedRequest r = parse_request(R"({"messages": [{"role": "system", "content": "be brief"},
      {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
      "tools": [{"type": "function", "function": {"name": "f"}}], "chat_template_kwargs": {"enable_thinking": false}})",
                                  Endpoint::chat);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[1]["content"], "ab");
  EXPECT_EQ(r.tools.size(), 1u);
  EXPECT_EQ(r.enable_thinking, false);
  EXPECT_TRUE(parse_request(R"({"messages": [{"role": "user", "content": "x"}]})", Endpoint::chat).tools.is_null());
}

TEST(RequestParser, Refusals) {
  const auto c = Endpoint::completions;
  expect_error("{not json", c, "", "malformed JSON");
  expect_error("[1, 2]", c, "", "JSON object");
  expect_error("{}", c, "prompt", "required");
  expect_error(R"({"prompt": ""})", c, "prompt", "empty");
  expect_error(R"({"prompt": []})", c, "prompt", "empty");
  expect_error(R"({"prompt": 5})", c, "prompt", "must be a string");
  expect_error(R"({"prompt": ["a", "b"]})", c, "prompt", "one prompt");
  expect_error(R"({"prompt": [1, -2]})", c, "prompt", "non-negative");
  expect_error(R"({"prompt": [1, 2.5]})", c, "prompt", "non-negative integers");
  expect_error(R"({"prompt": "x", "model": 3})", c, "model", "string");
  expect_error(R"({"prompt": "x", "temperature": -0.1})", c, "temperature", ">= 0");
  expect_error(R"({"prompt": "x", "temperature": "hot"})", c, "temperature", "number");
  expect_error(R"({"prompt": "x", "top_p": 0})", c, "top_p", "(0, 1]");
  expect_error(R"({"prompt": "x", "top_p": 1.5})", c, "top_p", "(0, 1]");
  expect_error(R"({"prompt": "x", "top_k": -3})", c, "top_k", ">= 0");
  expect_error(R"({"prompt": "x", "max_tokens": 0})", c, "max_tokens", ">= 1");
  expect_error(R"({"prompt": "x", "max_tokens": 2.5})", c, "max_tokens", "integer");
  expect_error(R"({"prompt": "x", "max_tokens": 1e12})", c, "max_tokens", "too large");
  expect_error(R"({"prompt": "x", "max_completion_tokens": -1})", c, "max_completion_tokens", ">= 1");
  expect_error(R"({"prompt": "x", "n": 2})", c, "n", "only n=1 is supported");
  expect_error(R"({"prompt": "x", "stream": "yes"})", c, "stream", "boolean");
  expect_error(R"({"prompt": "x", "stop": ["a", "b", "c", "d", "e"]})", c, "stop", "at most 4");
  expect_error(R"({"prompt": "x", "stop": [""]})", c, "stop", "empty");
  expect_error(R"({"prompt": "x", "stop": 7})", c, "stop", "string");
  expect_error(R"({"prompt": "x", "wedlm_window": 0})", c, "wedlm_window", "[1, 1024]");
  expect_error(R"({"prompt": "x", "wedlm_entropy_threshold": -1})", c, "wedlm_entropy_threshold", ">= 0");
  expect_error(R"({"prompt": "x", "wedlm_pos_penalty": -0.5})", c, "wedlm_pos_penalty", ">= 0");
  expect_error(R"({"prompt": "x", "mode": "diffusion"})", c, "mode", "\"wedlm\" or \"ar\"");
  expect_error(R"({"prompt": "x", "logprobs": 2})", c, "logprobs", "not supported");
  expect_error(R"({"prompt": "x", "echo": true})", c, "echo", "not supported");
  expect_error(R"({"prompt": "x", "presence_penalty": 0.5})", c, "presence_penalty", "not supported");
  expect_error(R"({"prompt": "x", "stream_options": 1})", c, "stream_options", "object");

  const auto chat = Endpoint::chat;
  expect_error(R"({"prompt": "x"})", chat, "messages", "required");
  expect_error(R"({"messages": []})", chat, "messages", "non-empty");
  expect_error(R"({"messages": ["hi"]})", chat, "messages[0]", "object");
  expect_error(R"({"messages": [{"content": "hi"}]})", chat, "messages[0].role", "string");
  expect_error(R"({"messages": [{"role": "user", "content": 5}]})", chat, "messages[0].content", "text parts");
  expect_error(R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", chat, "messages[0].content", "text");
  expect_error(R"({"messages": [{"role": "user", "content": "x"}], "tools": {}})", chat, "tools", "array");
}

}  // namespace
}  // namespace wedlm::server
