// The server over real HTTP on 127.0.0.1 with the tiny Qwen3 decode fixture (no tokenizer:
// prompts are token ids, outputs come back as token_ids).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "server/server_test_support.h"
#include "support/decode_cases.h"
#include "support/test_support.h"

namespace wedlm {
namespace {

using json = nlohmann::json;

std::string tiny_model() { return test::fixtures_dir() + "/decode_models/qwen3_tiny"; }

struct Reply {
  int status = 0;
  std::string body;
  std::string content_type;
  json as_json() const { return json::parse(body); }
};

Reply post(httplib::Client& c, const std::string& path, const std::string& body, const httplib::Headers& headers = {}) {
  auto r = c.Post(path.c_str(), headers, body, "application/json");
  if (!r) {
    ADD_FAILURE() << "POST " << path << " failed: " << httplib::to_string(r.error());
    return {};
  }
  return {r->status, r->body, r->get_header_value("Content-Type")};
}

Reply post(httplib::Client& c, const std::string& path, const json& body, const httplib::Headers& headers = {}) {
  return post(c, path, body.dump(), headers);
}

// A 4xx with an OpenAI error object; `code` and `param` checked when given.
void expect_error(const Reply& r, int status, const std::string& code = "", const std::string& param = "") {
  EXPECT_EQ(r.status, status) << r.body;
  json body;
  ASSERT_NO_THROW(body = json::parse(r.body)) << r.body;
  ASSERT_TRUE(body.contains("error")) << r.body;
  const json& e = body["error"];
  for (const char* key : {"message", "type", "param", "code"}) EXPECT_TRUE(e.contains(key)) << key << " in " << r.body;
  EXPECT_TRUE(e["message"].is_string());
  EXPECT_FALSE(e["message"].get<std::string>().empty());
  if (status < 500) {
    EXPECT_EQ(e["type"], "invalid_request_error");
  }
  if (!code.empty()) {
    EXPECT_EQ(e["code"], code) << r.body;
  }
  if (!param.empty()) {
    EXPECT_EQ(e["param"], param) << r.body;
  }
}

json id_request(const std::vector<int>& prompt, int max_tokens, bool stream = false) {
  return {{"prompt", prompt}, {"max_tokens", max_tokens}, {"ignore_eos", true}, {"return_token_ids", true}, {"stream", stream}};
}

class TinyServer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server::ServerOptions o;
    o.engine.model = tiny_model();
    o.engine.context = 4096;
    o.batch.max_sequences = 32;
    server_ = new test::RunningServer(o);
  }
  static void TearDownTestSuite() { delete server_; }
  static httplib::Client client() { return server_->client(); }
  static test::RunningServer* server_;
};
test::RunningServer* TinyServer::server_ = nullptr;

TEST_F(TinyServer, HealthAndModels) {
  auto c = client();
  auto health = c.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(json::parse(health->body)["status"], "ok");
  auto models = c.Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 200);
  json m = json::parse(models->body);
  EXPECT_EQ(m["object"], "list");
  ASSERT_EQ(m["data"].size(), 1u);
  EXPECT_EQ(m["data"][0]["id"], tiny_model());
  EXPECT_EQ(m["data"][0]["object"], "model");
  EXPECT_EQ(m["data"][0]["max_model_len"], 4096);
}

// Every greedy reference case (stop ids included) through the server, all at once, streamed:
// each output must equal the reference, whatever else was batched with it.
TEST_F(TinyServer, ReferenceCasesConcurrentlyMatchFixture) {
  json fixture = json::parse(test::read_text(test::fixtures_dir() + "/decode/qwen3_tiny.json"));
  std::vector<const json*> cases;
  for (const json& c : fixture["cases"]) {
    // AR cases have no kv_space: context_of_case reports -1 for both unlimited and absent.
    if (!c["fragile"].get<bool>() && test::context_of_case(c, -1) < 0 && c["params"].value("temperature", 0.0) == 0.0) {
      cases.push_back(&c);
    }
  }
  ASSERT_GE(cases.size(), 32u);
  std::vector<std::vector<int>> got(cases.size());
  std::vector<std::string> finish(cases.size());
  std::vector<std::thread> threads;
  std::atomic<std::size_t> next{0};
  for (int t = 0; t < 32; ++t) {
    threads.emplace_back([&] {
      auto c = client();
      for (std::size_t i = next++; i < cases.size(); i = next++) {
        const json& k = *cases[i];
        json body = id_request(k["prompt"].get<std::vector<int>>(), k["params"]["max_tokens"].get<int>(), true);
        body["mode"] = k["mode"];
        body["stop_token_ids"] = k["params"]["stop_ids"];
        if (k["mode"] == "wedlm") {
          body["wedlm_window"] = k["params"]["window"];
          body["wedlm_entropy_threshold"] = k["params"]["entropy_threshold"];
          body["wedlm_pos_penalty"] = k["params"]["position_penalty"];
        }
        Reply r = post(c, "/v1/completions", body);
        if (r.status != 200) {
          ADD_FAILURE() << r.body;
          continue;
        }
        auto sse = test::parse_sse(r.body);
        got[i] = test::sse_token_ids(sse);
        for (const auto& e : sse.events) {
          if (e.contains("choices") && !e["choices"].empty() && e["choices"][0]["finish_reason"].is_string()) {
            finish[i] = e["choices"][0]["finish_reason"];
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  for (std::size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(got[i], (*cases[i])["output"].get<std::vector<int>>()) << (*cases[i])["id"];
    EXPECT_EQ(finish[i], (*cases[i])["finish_reason"]) << (*cases[i])["id"];
  }
}

TEST_F(TinyServer, CompletionBodyUsageAndStreamAgree) {
  auto c = client();
  const std::vector<int> prompt{11, 12, 13, 14, 15};
  Reply whole = post(c, "/v1/completions", id_request(prompt, 20));
  ASSERT_EQ(whole.status, 200) << whole.body;
  EXPECT_NE(whole.content_type.find("application/json"), std::string::npos);
  json b = whole.as_json();
  EXPECT_EQ(b["object"], "text_completion");
  EXPECT_EQ(b["id"].get<std::string>().rfind("cmpl-", 0), 0u);
  EXPECT_EQ(b["model"], tiny_model());
  EXPECT_TRUE(b["created"].is_number_integer());
  ASSERT_EQ(b["choices"].size(), 1u);
  EXPECT_EQ(b["choices"][0]["index"], 0);
  EXPECT_EQ(b["choices"][0]["text"], "");  // no tokenizer
  EXPECT_EQ(b["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(b["choices"][0]["token_ids"].size(), 20u);
  EXPECT_EQ(b["usage"], json({{"prompt_tokens", 5}, {"completion_tokens", 20}, {"total_tokens", 25}}));

  Reply streamed = post(c, "/v1/completions", id_request(prompt, 20, true));
  ASSERT_EQ(streamed.status, 200) << streamed.body;
  EXPECT_NE(streamed.content_type.find("text/event-stream"), std::string::npos);
  auto sse = test::parse_sse(streamed.body);
  EXPECT_TRUE(sse.well_formed) << streamed.body;
  EXPECT_TRUE(sse.done);
  EXPECT_EQ(streamed.body.substr(streamed.body.size() - 14), "data: [DONE]\n\n");
  ASSERT_GE(sse.events.size(), 3u);
  std::string id = sse.events[0]["id"];
  for (const auto& e : sse.events) {
    EXPECT_EQ(e["id"], id);
    EXPECT_EQ(e["object"], "text_completion");
  }
  EXPECT_EQ(test::sse_token_ids(sse), b["choices"][0]["token_ids"].get<std::vector<int>>());
  // The last content chunk carries the finish reason; then a usage chunk with no choices.
  const json& last_content = sse.events[sse.events.size() - 2];
  EXPECT_EQ(last_content["choices"][0]["finish_reason"], "length");
  const json& usage = sse.events.back();
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"], b["usage"]);
  for (std::size_t i = 0; i + 2 < sse.events.size(); ++i) EXPECT_TRUE(sse.events[i]["choices"][0]["finish_reason"].is_null());

  json no_usage = id_request(prompt, 4, true);
  no_usage["stream_options"] = {{"include_usage", false}};
  auto sse2 = test::parse_sse(post(c, "/v1/completions", no_usage).body);
  for (const auto& e : sse2.events) EXPECT_FALSE(e.contains("usage"));
}

TEST_F(TinyServer, StopTokenEndsWithStop) {
  auto c = client();
  const std::vector<int> prompt{21, 22, 23};
  json first = post(c, "/v1/completions", id_request(prompt, 12)).as_json();
  std::vector<int> ids = first["choices"][0]["token_ids"];
  ASSERT_EQ(ids.size(), 12u);
  json body = id_request(prompt, 12);
  body["stop_token_ids"] = {ids[5]};
  json stopped = post(c, "/v1/completions", body).as_json();
  std::vector<int> got = stopped["choices"][0]["token_ids"];
  // Ends at the first occurrence of that id, which is kept (greedy output is unchanged before it).
  auto first_hit = std::find(ids.begin(), ids.end(), ids[5]);
  EXPECT_EQ(got, std::vector<int>(ids.begin(), first_hit + 1));
  EXPECT_EQ(stopped["choices"][0]["finish_reason"], "stop");
}

TEST_F(TinyServer, BadRequestsGetOpenAiErrors) {
  auto c = client();
  expect_error(post(c, "/v1/completions", std::string("{\"prompt\": [1, 2")), 400, "invalid_json");
  expect_error(post(c, "/v1/completions", std::string("\"just a string\"")), 400, "invalid_json");
  expect_error(post(c, "/v1/completions", json{{"prompt", {1, 2}}, {"temperature", -1}}), 400, "invalid_value", "temperature");
  expect_error(post(c, "/v1/completions", json{{"prompt", {1, 2}}, {"top_p", 0}}), 400, "", "top_p");
  expect_error(post(c, "/v1/completions", json{{"prompt", {1, 2}}, {"max_tokens", 0}}), 400, "", "max_tokens");
  expect_error(post(c, "/v1/completions", json{{"prompt", {1, 2}}, {"wedlm_window", 0}}), 400, "", "wedlm_window");
  expect_error(post(c, "/v1/completions", json{{"prompt", {1, 2}}, {"max_tokens", "many"}}), 400, "", "max_tokens");
  Reply n2 = post(c, "/v1/completions", json{{"prompt", {1, 2}}, {"n", 2}});
  expect_error(n2, 400, "", "n");
  EXPECT_NE(n2.body.find("only n=1 is supported"), std::string::npos);
  expect_error(post(c, "/v1/completions", json{{"prompt", {1, 9999}}}), 400, "", "prompt");  // outside the vocabulary
  expect_error(post(c, "/v1/completions", json{{"prompt", "text"}}), 400, "", "prompt");     // no tokenizer
  expect_error(post(c, "/v1/chat/completions", json{{"messages", {{{"role", "user"}, {"content", "hi"}}}}}), 400, "",
               "messages");
  expect_error(post(c, "/v1/completions", json{{"prompt", {1}}, {"stop", "x"}}), 400, "", "stop");
  // Longer than the context (4096 slots).
  expect_error(post(c, "/v1/completions", json{{"prompt", std::vector<int>(5000, 7)}}), 400, "context_length_exceeded",
               "prompt");
  Reply unknown = post(c, "/v1/completions", json{{"prompt", {1}}, {"model", "gpt-4"}});
  expect_error(unknown, 404, "model_not_found", "model");
  // The directory's basename is accepted as the model name.
  EXPECT_EQ(post(c, "/v1/completions", json{{"prompt", {1}}, {"model", "qwen3_tiny"}, {"max_tokens", 2}}).status, 200);

  auto missing = c.Get("/v1/nothing");
  ASSERT_TRUE(missing);
  expect_error({missing->status, missing->body, ""}, 404, "not_found");
  auto wrong_method = c.Get("/v1/completions");
  ASSERT_TRUE(wrong_method);
  expect_error({wrong_method->status, wrong_method->body, ""}, 404);

  // Still serving after all of that.
  EXPECT_EQ(post(c, "/v1/completions", id_request({1, 2, 3}, 3)).status, 200);
  EXPECT_GE(test::fetch_metric(c, "wedlm_http_client_errors_total"), 15);
}

// A client that drops a stream cancels its sequence: the KV blocks go back and the server goes on.
TEST_F(TinyServer, DisconnectMidStreamFreesTheSequence) {
  auto c = client();
  const double disconnects = test::fetch_metric(c, "wedlm_client_disconnects_total");
  const double completion_before = test::fetch_metric(c, "wedlm_completion_tokens_total");
  {
    test::RawConnection raw(server_->port());
    json body = id_request({5, 6, 7, 8}, 4000, true);
    body["mode"] = "ar";  // one token per step: the longest-running request the context allows
    raw.send_post("/v1/completions", body.dump());
    std::string got = raw.read_until("data: {");
    ASSERT_NE(got.find("200 OK"), std::string::npos) << got;
  }  // closed here
  EXPECT_EQ(test::wait_for_metric(c, "wedlm_client_disconnects_total", [&](double v) { return v > disconnects; }),
            disconnects + 1);
  EXPECT_EQ(test::wait_for_metric(c, "wedlm_kv_blocks_in_sequences", [](double v) { return v == 0; }), 0);
  EXPECT_EQ(test::wait_for_metric(c, "wedlm_requests_running", [](double v) { return v == 0; }), 0);
  // Cancelled well before its 4000 tokens.
  EXPECT_LT(test::fetch_metric(c, "wedlm_completion_tokens_total") - completion_before, 4000);
  EXPECT_EQ(post(c, "/v1/completions", id_request({1, 2, 3}, 5)).status, 200);
}

TEST_F(TinyServer, SharedPrefixHitsThePrefixCache) {
  auto c = client();
  std::vector<int> prompt;
  for (int i = 0; i < 100; ++i) prompt.push_back(100 + (i * 7) % 300);
  ASSERT_EQ(post(c, "/v1/completions", id_request(prompt, 4)).status, 200);
  const double hits = test::fetch_metric(c, "wedlm_prefix_cache_hit_tokens_total");
  prompt.back() = 42;  // same 99-token prefix, different last token
  ASSERT_EQ(post(c, "/v1/completions", id_request(prompt, 4)).status, 200);
  // At least the full 16-slot blocks of the shared prefix (96 tokens) come from the cache.
  EXPECT_GE(test::fetch_metric(c, "wedlm_prefix_cache_hit_tokens_total") - hits, 64);
}

TEST_F(TinyServer, MetricsCountRequestsAndTokens) {
  auto c = client();
  const double requests = test::fetch_metric(c, "wedlm_requests_total");
  const double prompt_tokens = test::fetch_metric(c, "wedlm_prompt_tokens_total");
  const double completion = test::fetch_metric(c, "wedlm_completion_tokens_total");
  ASSERT_EQ(post(c, "/v1/completions", id_request({9, 8, 7}, 6)).status, 200);
  EXPECT_EQ(test::fetch_metric(c, "wedlm_requests_total"), requests + 1);
  EXPECT_EQ(test::fetch_metric(c, "wedlm_prompt_tokens_total"), prompt_tokens + 3);
  EXPECT_EQ(test::fetch_metric(c, "wedlm_completion_tokens_total"), completion + 6);
  EXPECT_GT(test::fetch_metric(c, "wedlm_kv_blocks_total"), 0);
  EXPECT_GT(test::fetch_metric(c, "wedlm_tokens_per_forward"), 0);
  EXPECT_EQ(test::fetch_metric(c, "wedlm_requests_waiting"), 0);
  auto r = c.Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_NE(r->get_header_value("Content-Type").find("text/plain"), std::string::npos);
}

// A fixed amount of work; prints throughput, asserts only that every request succeeded.
TEST_F(TinyServer, BoundedLoad) {
  constexpr int kRequests = 96, kClients = 16, kMaxTokens = 32;
  std::atomic<int> next{0}, ok{0};
  std::atomic<long> tokens{0};
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&] {
      auto c = client();
      for (int i = next++; i < kRequests; i = next++) {
        Reply r = post(c, "/v1/completions", id_request({1 + i % 50, 2, 3, 4 + i % 7}, kMaxTokens, i % 2 == 0));
        if (r.status != 200) continue;
        ++ok;
        tokens += kMaxTokens;
      }
    });
  }
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(ok.load(), kRequests);
  std::printf("[load] %d requests x %d tokens, %d clients: %.2f s, %.1f requests/s, %.0f tokens/s\n", kRequests, kMaxTokens,
              kClients, seconds, kRequests / seconds, static_cast<double>(tokens.load()) / seconds);
}

// Auth and body limits on a second server.
class GuardedServer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server::ServerOptions o;
    o.engine.model = tiny_model();
    o.engine.context = 256;
    o.api_key = "sekret";
    o.served_model_name = "tiny";
    o.max_body_bytes = 4096;
    server_ = new test::RunningServer(o);
  }
  static void TearDownTestSuite() { delete server_; }
  static test::RunningServer* server_;
};
test::RunningServer* GuardedServer::server_ = nullptr;

TEST_F(GuardedServer, BearerTokenRequiredOnApiRoutes) {
  auto c = server_->client();
  const json body = id_request({1, 2}, 2);
  expect_error(post(c, "/v1/completions", body), 401, "invalid_api_key");
  expect_error(post(c, "/v1/completions", body, {{"Authorization", "Bearer wrong"}}), 401, "invalid_api_key");
  expect_error(post(c, "/v1/completions", body, {{"Authorization", "sekret"}}), 401, "invalid_api_key");
  auto models = c.Get("/v1/models");
  ASSERT_TRUE(models);
  expect_error({models->status, models->body, ""}, 401, "invalid_api_key");
  Reply ok = post(c, "/v1/completions", body, {{"Authorization", "Bearer sekret"}});
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.as_json()["model"], "tiny");
  // Probes and scrapers need no key.
  auto health = c.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
}

TEST_F(GuardedServer, OversizedBodyGets413) {
  auto c = server_->client();
  json body = id_request(std::vector<int>(3000, 5), 2);
  Reply r = post(c, "/v1/completions", body, {{"Authorization", "Bearer sekret"}});
  expect_error(r, 413, "payload_too_large");
  auto c2 = server_->client();
  EXPECT_EQ(post(c2, "/v1/completions", id_request({1, 2}, 2), {{"Authorization", "Bearer sekret"}}).status, 200);
}

// One sequence at a time and frequent heartbeats: a client that leaves while its request is
// still queued is noticed by a failed heartbeat write and its request never runs.
TEST(OneSlotServer, DisconnectWhileQueuedCancelsTheWaitingRequest) {
  server::ServerOptions o;
  o.engine.model = tiny_model();
  o.batch.max_sequences = 1;
  o.sse_heartbeat = std::chrono::milliseconds(50);
  test::RunningServer server(o);
  auto c = server.client();
  json long_body = id_request({5, 6, 7}, 4000, true);
  long_body["mode"] = "ar";
  test::RawConnection running(server.port());
  running.send_post("/v1/completions", long_body.dump());
  ASSERT_NE(running.read_until("data: {").find("200 OK"), std::string::npos);
  {
    test::RawConnection queued(server.port());
    queued.send_post("/v1/completions", id_request({9, 9, 9}, 50, true).dump());
    EXPECT_EQ(test::wait_for_metric(c, "wedlm_requests_waiting", [](double v) { return v == 1; }), 1);
  }  // the queued client leaves
  EXPECT_EQ(test::wait_for_metric(c, "wedlm_client_disconnects_total", [](double v) { return v >= 1; }), 1);
  // The cancel is applied by the scheduler thread a moment later.
  EXPECT_EQ(test::wait_for_metric(c, "wedlm_requests_waiting", [](double v) { return v == 0; }), 0);
  EXPECT_EQ(test::fetch_metric(c, "wedlm_requests_running"), 1);  // the long one is still going
  running.close();
  EXPECT_EQ(test::wait_for_metric(c, "wedlm_client_disconnects_total", [](double v) { return v >= 2; }), 2);
  EXPECT_EQ(test::wait_for_metric(c, "wedlm_kv_blocks_in_sequences", [](double v) { return v == 0; }), 0);
  EXPECT_EQ(test::fetch_metric(c, "wedlm_requests_total"), 2);
}

}  // namespace
}  // namespace wedlm
