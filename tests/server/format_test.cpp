// OpenAI response shapes, SSE framing and the Prometheus text, without a model.
#include <gtest/gtest.h>

#include <set>

#include "server/metrics.h"
#include "server/openai_format.h"
#include "server/server_test_support.h"
#include "server/sse_stream.h"

namespace wedlm::server {
namespace {

TEST(OpenAiFormat, CompletionAndChatBodies) {
  ResponseHeader h{"cmpl-1", 123, "m", Endpoint::completions};
  const std::vector<std::int32_t> ids{5, 6};
  auto body = full_response(h, "hey", &ids, "length", {3, 2});
  EXPECT_EQ(body["object"], "text_completion");
  EXPECT_EQ(body["id"], "cmpl-1");
  EXPECT_EQ(body["created"], 123);
  EXPECT_EQ(body["model"], "m");
  EXPECT_EQ(body["choices"][0]["index"], 0);
  EXPECT_EQ(body["choices"][0]["text"], "hey");
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(body["choices"][0]["token_ids"], nlohmann::json({5, 6}));
  EXPECT_EQ(body["usage"], nlohmann::json({{"prompt_tokens", 3}, {"completion_tokens", 2}, {"total_tokens", 5}}));

  h.endpoint = Endpoint::chat;
  body = full_response(h, "yo", nullptr, "stop", {1, 1});
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["choices"][0]["message"], nlohmann::json({{"role", "assistant"}, {"content", "yo"}}));
  EXPECT_FALSE(body["choices"][0].contains("token_ids"));
}

TEST(OpenAiFormat, StreamChunks) {
  ResponseHeader h{"chatcmpl-1", 1, "m", Endpoint::chat};
  auto first = stream_chunk(h, "", nullptr, "", true);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"], nlohmann::json({{"role", "assistant"}, {"content", ""}}));
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  auto last = stream_chunk(h, "", nullptr, "stop", false);
  EXPECT_EQ(last["choices"][0]["delta"], nlohmann::json::object());
  EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");
  auto usage = usage_chunk(h, {4, 6});
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["total_tokens"], 10);
  h.endpoint = Endpoint::completions;
  EXPECT_EQ(stream_chunk(h, "ab", nullptr, "", false)["choices"][0]["text"], "ab");
  EXPECT_EQ(stream_chunk(h, "ab", nullptr, "", false)["object"], "text_completion");
}

TEST(OpenAiFormat, ResponseIdsAreUnique) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) ids.insert(make_response_id(Endpoint::completions));
  EXPECT_EQ(ids.size(), 1000u);
  EXPECT_EQ(make_response_id(Endpoint::chat).rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(make_response_id(Endpoint::completions).rfind("cmpl-", 0), 0u);
}

TEST(Sse, FramingRoundTrips) {
  const nlohmann::json payload = {{"a", "line1\nline2"}};
  const std::string event = sse_event(payload);
  EXPECT_EQ(event.rfind("data: ", 0), 0u);
  EXPECT_EQ(event.substr(event.size() - 2), "\n\n");
  EXPECT_EQ(event.find('\n'), event.size() - 2);  // a newline in the text is escaped, not raw
  auto parsed = test::parse_sse(event + ": keep-alive\n\n" + kSseDone);
  EXPECT_TRUE(parsed.well_formed);
  EXPECT_TRUE(parsed.done);
  ASSERT_EQ(parsed.events.size(), 1u);
  EXPECT_EQ(parsed.events[0], payload);
  EXPECT_FALSE(test::parse_sse("data: {}\n").well_formed);
}

TEST(Metrics, PrometheusTextCarriesEveryStat) {
  EngineStats s;
  s.requests_total = 7;
  s.requests_running = 2;
  s.requests_waiting = 3;
  s.prompt_tokens_total = 100;
  s.completion_tokens_total = 60;
  s.forwards_total = 20;
  s.prefill_tokens_computed = 80;
  s.prefix_cache_hit_tokens = 20;
  s.kv_blocks_used = 9;
  s.kv_blocks_in_sequences = 4;
  s.kv_blocks_total = 64;
  s.preemptions = 1;
  HttpCounters http;
  http.client_disconnects = 5;
  const std::string text = prometheus_text(s, http);
  EXPECT_NE(text.find("# TYPE wedlm_requests_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE wedlm_requests_waiting gauge\n"), std::string::npos);
  EXPECT_EQ(test::metric_value(text, "wedlm_requests_total"), 7);
  EXPECT_EQ(test::metric_value(text, "wedlm_requests_running"), 2);
  EXPECT_EQ(test::metric_value(text, "wedlm_requests_waiting"), 3);
  EXPECT_EQ(test::metric_value(text, "wedlm_prompt_tokens_total"), 100);
  EXPECT_EQ(test::metric_value(text, "wedlm_completion_tokens_total"), 60);
  EXPECT_EQ(test::metric_value(text, "wedlm_tokens_per_forward"), 3);
  EXPECT_EQ(test::metric_value(text, "wedlm_prefix_cache_hit_tokens_total"), 20);
  EXPECT_EQ(test::metric_value(text, "wedlm_kv_blocks_used"), 9);
  EXPECT_EQ(test::metric_value(text, "wedlm_kv_blocks_in_sequences"), 4);
  EXPECT_EQ(test::metric_value(text, "wedlm_kv_blocks_total"), 64);
  EXPECT_EQ(test::metric_value(text, "wedlm_preemptions_total"), 1);
  EXPECT_EQ(test::metric_value(text, "wedlm_client_disconnects_total"), 5);
}

}  // namespace
}  // namespace wedlm::server
