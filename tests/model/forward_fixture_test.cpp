// The CPU forward pass against transformers' Qwen3ForCausalLM / Qwen2ForCausalLM (float64 compute
// on the same weights; see tools/make_fixtures.py). Every case replays the engine's cache
// operations: prefill, permuted WeDLM windows, incremental decode, overwritten cache slots.
#include <algorithm>
#include <cmath>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "backend/cpu/cpu_backend.h"
#include "model/checkpoint.h"
#include "model/transformer.h"
#include "support/test_support.h"

namespace wedlm {
namespace {

using json = nlohmann::json;

// Our CPU path computes in fp32 from exactly the weights the float64 reference used, so the only
// differences are fp32 rounding and summation order: logits of magnitude ~10 agree to ~1e-5.
constexpr float kTolerance = 1e-4f;

std::size_t argmax(const float* row, std::int64_t n) {
  return static_cast<std::size_t>(std::max_element(row, row + n) - row);
}

// Smallest gap between the best and second-best logit: an argmax comparison is meaningful only
// when the gap exceeds the tolerance.
float top2_gap(const float* row, std::int64_t n) {
  std::vector<float> v(row, row + n);
  std::partial_sort(v.begin(), v.begin() + 2, v.end(), std::greater<float>());
  return v[0] - v[1];
}

class ForwardFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(ForwardFixture, MatchesReferenceLogits) {
  const std::string dir = test::fixture_model(GetParam());
  json manifest = json::parse(test::read_text(dir + "/cases.json"));
  auto ck = open_checkpoint(dir);
  auto backend = make_cpu_backend();
  Transformer transformer(*ck, *backend, 8);  // small chunks so chunked prefill is exercised too
  const std::int64_t vocab = ck->config.vocab_size;
  ASSERT_EQ(manifest["mask_token_id"].get<std::int64_t>(), ck->config.mask_token_id);

  for (const json& c : manifest["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    auto cache = transformer.make_kv_cache(64);
    std::vector<float> got;
    for (const json& step : c["steps"]) {
      auto ids = step["ids"].get<std::vector<std::int32_t>>();
      auto positions = step["positions"].get<std::vector<std::int32_t>>();
      auto rows = step["logit_rows"].get<std::vector<std::int32_t>>();
      std::vector<float> logits =
          transformer.forward(*cache, {ids, positions, step["cache_start"].get<std::int64_t>(), rows});
      got.insert(got.end(), logits.begin(), logits.end());
    }
    std::vector<float> expected;
    if (c.contains("step1_logits_file")) expected = test::read_f32_file(dir + "/" + c["step1_logits_file"].get<std::string>());
    std::vector<float> main_rows = test::read_f32_file(dir + "/" + c["logits_file"].get<std::string>());
    expected.insert(expected.end(), main_rows.begin(), main_rows.end());
    ASSERT_EQ(got.size(), expected.size());

    float max_err = 0.0f;
    for (std::size_t i = 0; i < got.size(); ++i) max_err = std::max(max_err, std::fabs(got[i] - expected[i]));
    EXPECT_LT(max_err, kTolerance) << GetParam();
    RecordProperty("max_abs_error_" + c["name"].get<std::string>(), std::to_string(max_err));
    for (std::size_t r = 0; r < got.size() / static_cast<std::size_t>(vocab); ++r) {
      const float* e = expected.data() + r * static_cast<std::size_t>(vocab);
      if (top2_gap(e, vocab) > 10 * kTolerance) {
        EXPECT_EQ(argmax(got.data() + r * static_cast<std::size_t>(vocab), vocab), argmax(e, vocab)) << "row " << r;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllFixtureModels, ForwardFixture, ::testing::ValuesIn(test::fixture_model_names()),
                         [](const auto& info) { return info.param; });

TEST(ForwardFixtureSet, CoversBothVariantsAndAllDtypes) {
  bool qwen2 = false, qwen3 = false, bf16 = false, f32 = false, tied = false, untied = false, gqa = false, mha = false,
       odd_head_dim = false;
  for (const std::string& name : test::fixture_model_names()) {
    auto ck = open_checkpoint(test::fixture_model(name));
    const ModelConfig& c = ck->config;
    (c.qk_norm ? qwen3 : qwen2) = true;
    (c.tie_word_embeddings ? tied : untied) = true;
    (c.num_kv_heads == c.num_heads ? mha : gqa) = true;
    odd_head_dim |= c.head_dim * c.num_heads != c.hidden_size;
    bf16 |= *ck->tensors.embed->dtype == DType::BF16;
    f32 |= *ck->tensors.embed->dtype == DType::F32;
  }
  EXPECT_TRUE(qwen2 && qwen3 && bf16 && f32 && tied && untied && gqa && mha && odd_head_dim);
}

}  // namespace
}  // namespace wedlm

namespace wedlm {
namespace {

// Two sequences in one batched forward, each in scattered blocks of a shared pool, with chunks
// smaller than a sequence so that chunk boundaries cut through both: the logits must equal the
// reference, exactly as when each runs alone.
TEST(BatchedForward, PagedSequencesMatchReference) {
  const std::string dir = test::fixture_model("qwen2_bf16_untied_gqa_hd24");
  json manifest = json::parse(test::read_text(dir + "/cases.json"));
  const json* prefill = nullptr;
  const json* window = nullptr;
  for (const json& c : manifest["cases"]) {
    if (c["name"] == "prefill") prefill = &c;
    if (c["name"] == "permuted_window") window = &c;
  }
  ASSERT_TRUE(prefill && window);
  auto ck = open_checkpoint(dir);
  auto backend = make_cpu_backend();
  Transformer transformer(*ck, *backend, 5);
  auto cache = transformer.make_kv_cache(32, 4);  // 8 blocks of 4 slots
  const std::vector<std::int32_t> table_a = {5, 2, 7, 0}, table_b = {1, 6, 3, 4};
  auto steps_a = (*prefill)["steps"], steps_b = (*window)["steps"];
  auto ids_a = steps_a[0]["ids"].get<std::vector<std::int32_t>>();
  auto pos_a = steps_a[0]["positions"].get<std::vector<std::int32_t>>();
  auto rows_a = steps_a[0]["logit_rows"].get<std::vector<std::int32_t>>();
  auto ids_b0 = steps_b[0]["ids"].get<std::vector<std::int32_t>>();
  auto pos_b0 = steps_b[0]["positions"].get<std::vector<std::int32_t>>();
  auto ids_b1 = steps_b[1]["ids"].get<std::vector<std::int32_t>>();
  auto pos_b1 = steps_b[1]["positions"].get<std::vector<std::int32_t>>();
  auto rows_b1 = steps_b[1]["logit_rows"].get<std::vector<std::int32_t>>();

  ForwardRequest first[] = {{ids_b0, pos_b0, 0, {}, table_b}, {ids_a, pos_a, 0, rows_a, table_a}};
  std::vector<float> got_a = transformer.forward_batch(*cache, first);
  ForwardRequest second[] = {{ids_b1, pos_b1, 8, rows_b1, table_b}};
  std::vector<float> got_b = transformer.forward_batch(*cache, second);

  for (auto [got, file] : {std::pair{&got_a, "prefill.f32"}, std::pair{&got_b, "permuted_window.f32"}}) {
    std::vector<float> expected = test::read_f32_file(dir + "/" + file);
    ASSERT_EQ(got->size(), expected.size()) << file;
    float max_err = 0.0f;
    for (std::size_t i = 0; i < expected.size(); ++i) max_err = std::max(max_err, std::fabs((*got)[i] - expected[i]));
    EXPECT_LT(max_err, kTolerance) << file;
  }
}

}  // namespace
}  // namespace wedlm
