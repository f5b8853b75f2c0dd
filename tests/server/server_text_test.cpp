// The server on a random-weight checkpoint with the real Qwen3 tokenizer and chat template:
// text prompts, chat, stop strings, streamed text equal to whole text.
#include <gtest/gtest.h>

#include "server/server_test_support.h"
#include "support/test_support.h"
#include "wedlm/chat_template.h"
#include "wedlm/tokenizer.h"

namespace wedlm {
namespace {

using json = nlohmann::json;

class TextServer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    test::synth_tiny_with_tokenizer(*dir_);
    server::ServerOptions o;
    o.engine.model = dir_->file("m");
    o.engine.context = 1024;
    o.batch.max_sequences = 8;
    server_ = new test::RunningServer(o);
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
  }
  static json post(const std::string& path, const json& body, int expect_status = 200) {
    auto c = server_->client();
    auto r = c.Post(path.c_str(), body.dump(), "application/json");
    EXPECT_TRUE(r);
    if (!r) return {};
    EXPECT_EQ(r->status, expect_status) << r->body;
    if (body.value("stream", false) && r->status == 200) {
      auto sse = test::parse_sse(r->body);
      EXPECT_TRUE(sse.well_formed && sse.done) << r->body;
      json out = {{"text", test::sse_text(sse)}, {"events", sse.events}};
      return out;
    }
    return json::parse(r->body);
  }
  static std::string model() { return dir_->file("m"); }
  static test::TempDir* dir_;
  static test::RunningServer* server_;
};
test::TempDir* TextServer::dir_ = nullptr;
test::RunningServer* TextServer::server_ = nullptr;

// The same greedy request as `wedlm generate --json` gives the same ids and text.
TEST_F(TextServer, TextCompletionMatchesCli) {
  json got = post("/v1/completions", {{"prompt", "Hello there"}, {"max_tokens", 12}, {"ignore_eos", true}, {"return_token_ids", true}});
  auto cli = test::run_cli("generate --json --model " + model() + " --prompt 'Hello there' --max-tokens 12 --ignore-eos");
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  json want = json::parse(cli.out);
  EXPECT_EQ(got["choices"][0]["token_ids"], want["output_ids"]);
  EXPECT_EQ(got["choices"][0]["text"], want["text"]);
  EXPECT_EQ(got["usage"]["prompt_tokens"], want["prompt_tokens"]);
  EXPECT_EQ(got["model"], model());
  // Streamed text is the same text.
  json streamed = post("/v1/completions", {{"prompt", "Hello there"}, {"max_tokens", 12}, {"ignore_eos", true}, {"stream", true}});
  EXPECT_EQ(streamed["text"], want["text"]);
}

// Output ends just before the stop string (OpenAI), streamed or not, finish_reason stop.
TEST_F(TextServer, StopStringCutsTheText) {
  const json base = {{"prompt", "Once upon a time"}, {"max_tokens", 40}, {"ignore_eos", true}};
  const std::string full = post("/v1/completions", base)["choices"][0]["text"];
  ASSERT_GE(full.size(), 12u) << full;
  // A stop string from the middle whose first occurrence is where we took it.
  std::string stop;
  std::size_t at = 0;
  for (std::size_t i = 4; i + 3 <= full.size() && stop.empty(); ++i) {
    std::string candidate = full.substr(i, 3);
    bool ascii = true;
    for (unsigned char ch : candidate) ascii = ascii && ch < 0x80;
    if (ascii && full.find(candidate) == i) {
      stop = candidate;
      at = i;
    }
  }
  ASSERT_FALSE(stop.empty()) << full;
  json body = base;
  body["stop"] = {stop, "\x01never"};
  json cut = post("/v1/completions", body);
  EXPECT_EQ(cut["choices"][0]["text"], full.substr(0, at));
  EXPECT_EQ(cut["choices"][0]["finish_reason"], "stop");
  body["stream"] = true;
  json streamed = post("/v1/completions", body);
  EXPECT_EQ(streamed["text"], full.substr(0, at));
  bool saw_stop = false;
  for (const auto& e : streamed["events"]) {
    if (!e["choices"].empty() && e["choices"][0]["finish_reason"] == "stop") saw_stop = true;
  }
  EXPECT_TRUE(saw_stop);
}

TEST_F(TextServer, ChatRendersTheTemplateAndStreamsDeltas) {
  const json messages = json::array({{{"role", "system"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", "Hi!"}}});
  json whole = post("/v1/chat/completions", {{"model", "m"}, {"messages", messages}, {"max_tokens", 10}});
  EXPECT_EQ(whole["object"], "chat.completion");
  EXPECT_EQ(whole["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(whole["choices"][0]["message"]["role"], "assistant");
  ASSERT_TRUE(whole["choices"][0]["message"]["content"].is_string());
  const std::string reason = whole["choices"][0]["finish_reason"];
  EXPECT_TRUE(reason == "stop" || reason == "length") << reason;

  // The prompt is the template's rendering, tokenized.
  Tokenizer tokenizer = Tokenizer::from_file(model() + "/tokenizer.json");
  ChatTemplate chat = ChatTemplate::from_model_dir(model());
  const std::size_t expected_prompt = tokenizer.encode(chat.render(messages, nullptr, {})).size();
  EXPECT_EQ(whole["usage"]["prompt_tokens"], expected_prompt);

  json streamed = post("/v1/chat/completions", {{"messages", messages}, {"max_tokens", 10}, {"stream", true}});
  const auto& events = streamed["events"];
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events[0]["object"], "chat.completion.chunk");
  EXPECT_EQ(events[0]["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(streamed["text"], whole["choices"][0]["message"]["content"]);
  EXPECT_EQ(events.back()["usage"], whole["usage"]);

  // Tools are passed to the template: they show up in the prompt.
  json tools = json::array({{{"type", "function"},
                             {"function", {{"name", "get_weather"}, {"description", "Weather for a city"},
                                           {"parameters", {{"type", "object"}, {"properties", json::object()}}}}}}});
  json with_tools = post("/v1/chat/completions", {{"messages", messages}, {"max_tokens", 2}, {"tools", tools}});
  EXPECT_GT(with_tools["usage"]["prompt_tokens"].get<int>(), static_cast<int>(expected_prompt) + 10);
}

TEST_F(TextServer, MalformedConversationIs400) {
  json r = post("/v1/chat/completions", {{"messages", json::array({json{{"role", "user"}}})}}, 400);
  EXPECT_EQ(r["error"]["type"], "invalid_request_error");
  EXPECT_EQ(r["error"]["param"], "messages");
}

}  // namespace
}  // namespace wedlm
