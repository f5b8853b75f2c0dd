// Continuous batching: results never depend on what else is batched, preempted sequences resume
// exactly, shared prefixes skip their prefill, cancellation frees everything.
#include <future>
#include <map>
#include <mutex>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/decode_cases.h"
#include "support/test_support.h"
#include "wedlm/batch_engine.h"
#include "wedlm/error.h"

namespace wedlm {
namespace {

using json = nlohmann::json;

std::string tiny_model() { return test::fixtures_dir() + "/decode_models/qwen3_tiny"; }

// Submits every request at once and waits for all results, in submission order.
std::vector<GenerateResult> run_all(BatchEngine& engine, const std::vector<GenerateRequest>& requests) {
  std::vector<std::promise<GenerateResult>> done(requests.size());
  std::vector<std::vector<std::int32_t>> streamed(requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i) {
    engine.submit(requests[i], {[&streamed, i](std::span<const std::int32_t> ids) {
                                  streamed[i].insert(streamed[i].end(), ids.begin(), ids.end());
                                  return true;
                                },
                                [&done, i](const GenerateResult& r) { done[i].set_value(r); }});
  }
  std::vector<GenerateResult> results;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    results.push_back(done[i].get_future().get());
    EXPECT_EQ(streamed[i], results.back().output) << "request " << i;
  }
  return results;
}

// 32 requests of every kind: WeDLM with various windows and thresholds, AR, greedy and sampled.
std::vector<GenerateRequest> mixed_requests(std::int32_t count) {
  std::vector<GenerateRequest> requests;
  for (std::int32_t i = 0; i < count; ++i) {
    GenerateRequest r;
    for (std::int32_t t = 0; t < 3 + i % 7; ++t) r.prompt.push_back((i * 37 + t * 11) % 500);
    r.mode = i % 4 == 3 ? DecodeMode::ar : DecodeMode::wedlm;
    r.wedlm.window = std::vector<std::int32_t>{4, 16, 8, 1}[static_cast<std::size_t>(i % 4)];
    r.wedlm.entropy_threshold = i % 3 == 0 ? 0.8 : 0.4;
    r.max_tokens = 12 + i % 20;
    r.ignore_eos = i % 5 != 0;
    if (i % 6 == 5) r.sampling = {0.8, 50, 0.9, static_cast<std::uint64_t>(1000 + i)};
    requests.push_back(r);
  }
  return requests;
}

TEST(BatchEngine, ThirtyTwoConcurrentEqualSoloRuns) {
  auto requests = mixed_requests(32);
  Engine solo({tiny_model(), "cpu", 256, false});
  BatchEngine batch({tiny_model(), "cpu", 256, false}, BatchOptions{});
  std::vector<GenerateResult> together = run_all(batch, requests);
  for (std::size_t i = 0; i < requests.size(); ++i) {
    GenerateResult alone = solo.generate(requests[i]);
    EXPECT_EQ(together[i].output, alone.output) << "request " << i;
    EXPECT_EQ(together[i].finish_reason, alone.finish_reason) << "request " << i;
    EXPECT_EQ(together[i].forwards, alone.forwards) << "request " << i;
  }
  EngineStats s = batch.stats();
  EXPECT_EQ(s.requests_total, 32);
  EXPECT_EQ(s.kv_blocks_in_sequences, 0);
  EXPECT_EQ(s.requests_running + s.requests_waiting, 0);
  EXPECT_GT(s.forwards_total, 0);
}

TEST(BatchEngine, ReferenceDecodingCasesAllAtOnce) {
  json fixture = json::parse(test::read_text(test::fixtures_dir() + "/decode/qwen3_tiny.json"));
  std::vector<GenerateRequest> requests;
  std::vector<const json*> cases;
  for (const json& c : fixture["cases"]) {
    if (c["fragile"].get<bool>() || test::context_of_case(c, -1) >= 0) continue;  // one shared context
    requests.push_back(test::request_of_case(c));
    cases.push_back(&c);
  }
  BatchOptions options;
  options.max_sequences = 48;
  BatchEngine batch({tiny_model(), "cpu", 1024, false}, options);
  std::vector<GenerateResult> results = run_all(batch, requests);
  for (std::size_t i = 0; i < results.size(); ++i) {
    EXPECT_EQ(results[i].output, (*cases[i])["output"].get<std::vector<std::int32_t>>()) << (*cases[i])["id"];
    EXPECT_EQ(results[i].forwards, (*cases[i])["forwards"].get<std::int64_t>()) << (*cases[i])["id"];
  }
}

TEST(BatchEngine, PreemptionWhenBlocksRunOutResumesExactly) {
  auto requests = mixed_requests(10);
  for (auto& r : requests) r.max_tokens = 40;
  BatchOptions options;
  options.block_size = 4;
  options.kv_blocks = 40;  // room for about three sequences at a time
  options.prefix_cache = false;
  BatchEngine batch({tiny_model(), "cpu", 128, false}, options);
  std::vector<GenerateResult> together = run_all(batch, requests);
  Engine solo({tiny_model(), "cpu", 128, false});
  for (std::size_t i = 0; i < requests.size(); ++i) EXPECT_EQ(together[i].output, solo.generate(requests[i]).output);
  EngineStats s = batch.stats();
  EXPECT_GT(s.preemptions, 0);
  EXPECT_EQ(s.kv_blocks_used, 0);
}

TEST(BatchEngine, SharedPrefixSkipsItsPrefill) {
  GenerateRequest first;
  for (std::int32_t t = 0; t < 100; ++t) first.prompt.push_back((t * 7) % 400);
  first.max_tokens = 8;
  first.ignore_eos = true;
  GenerateRequest second = first;
  second.prompt.resize(96);
  for (std::int32_t t : {401, 402, 403, 404, 405}) second.prompt.push_back(t);
  BatchOptions options;
  options.block_size = 16;
  BatchEngine batch({tiny_model(), "cpu", 256, false}, options);
  run_all(batch, {first});
  const EngineStats before = batch.stats();
  GenerateResult shared = run_all(batch, {second})[0];
  const EngineStats after = batch.stats();
  EXPECT_EQ(after.prefix_cache_hit_tokens - before.prefix_cache_hit_tokens, 96);  // six full blocks
  EXPECT_EQ(after.prefill_tokens_computed - before.prefill_tokens_computed, 5);
  Engine solo({tiny_model(), "cpu", 256, false});
  EXPECT_EQ(shared.output, solo.generate(second).output);
  EXPECT_EQ(after.kv_blocks_in_sequences, 0);
}

TEST(BatchEngine, CancelAndCallerStopFreeEverything) {
  BatchEngine batch({tiny_model(), "cpu", 512, false}, BatchOptions{});
  GenerateRequest long_request;
  long_request.prompt = {1, 2, 3};
  long_request.max_tokens = 400;
  long_request.ignore_eos = true;
  long_request.wedlm.window = 1;  // one token per step: plenty of time to cancel
  std::promise<GenerateResult> cancelled, stopped;
  std::promise<void> started;
  std::once_flag once;
  const std::uint64_t id = batch.submit(long_request, {[&](std::span<const std::int32_t>) {
                                                         std::call_once(once, [&] { started.set_value(); });
                                                         return true;
                                                       },
                                                       [&](const GenerateResult& r) { cancelled.set_value(r); }});
  started.get_future().wait();
  batch.cancel(id);
  GenerateResult c = cancelled.get_future().get();
  EXPECT_EQ(c.finish_reason, FinishReason::none);
  EXPECT_LT(c.output.size(), 400u);

  int calls = 0;
  batch.submit(long_request, {[&](std::span<const std::int32_t>) { return ++calls < 3; },
                              [&](const GenerateResult& r) { stopped.set_value(r); }});
  GenerateResult s = stopped.get_future().get();
  EXPECT_EQ(s.finish_reason, FinishReason::stop);
  EXPECT_EQ(calls, 3);
  batch.drain();
  EXPECT_EQ(batch.stats().kv_blocks_in_sequences, 0);
  batch.cancel(id);  // unknown by now: ignored
}

TEST(BatchEngine, RejectsBadRequestsAndSubmitsAfterDrain) {
  BatchEngine batch({tiny_model(), "cpu", 32, false}, BatchOptions{});
  GenerateRequest r;
  r.prompt = std::vector<std::int32_t>(40, 1);
  EXPECT_THROW(batch.submit(r, {}), Error);  // longer than the context
  r.prompt = {1, 2};
  r.sampling.top_p = 2.0;
  EXPECT_THROW(batch.submit(r, {}), Error);
  r.sampling.top_p = 1.0;
  std::promise<GenerateResult> done;
  batch.submit(r, {nullptr, [&](const GenerateResult& g) { done.set_value(g); }});
  batch.drain();
  EXPECT_EQ(done.get_future().wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_THROW(batch.submit(r, {}), Error);
}

}  // namespace
}  // namespace wedlm
