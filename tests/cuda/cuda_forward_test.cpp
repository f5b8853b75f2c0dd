// The CUDA forward pass on every forward fixture against the CPU backend (fp32, itself within
// 1e-4 of the float64 reference) and, for bf16 checkpoints, against transformers' own bf16 run.
//
// Tolerance. bf16 keeps 8 significant bits (unit roundoff u = 2^-9 ~ 2e-3). Rounding every
// activation to bf16 through a few layers gives logits with a relative L2 error of a few u:
// transformers' native bf16 run on these fixtures is 0.7..1.1e-2 from float64. Our path rounds
// at the same places or fewer (fp32 RoPE tables, fp32 norms), plus the f32/f16 checkpoints are
// rounded to bf16 at upload, so we allow relative L2 <= 3e-2 and a largest absolute error of
// 3% of the largest logit; where transformers' bf16 logits exist we also require our error to
// be within 2x of theirs (both against float64). Argmax must agree on every row whose top-2
// gap is more than twice the allowed absolute error, where no error within tolerance can flip it.
// (For the f16 checkpoint the native file is transformers' fp16 run, ~10x more precise than
// bf16: it is no yardstick for a bf16 path and is not compared.)
#include <fstream>

#include <nlohmann/json.hpp>

#include "backend/cpu/cpu_backend.h"
#include "cuda_test_support.h"
#include "model/checkpoint.h"
#include "model/transformer.h"
#include "support/test_support.h"

namespace wedlm {
namespace {

using json = nlohmann::json;

constexpr double kRelL2 = 3e-2;
constexpr double kMaxAbsOfLargest = 3e-2;
constexpr double kVsNative = 2.0;

std::vector<float> run_case(Transformer& t, const json& c) {
  auto cache = t.make_kv_cache(64);
  std::vector<float> got;
  for (const json& step : c["steps"]) {
    auto ids = step["ids"].get<std::vector<std::int32_t>>();
    auto positions = step["positions"].get<std::vector<std::int32_t>>();
    auto rows = step["logit_rows"].get<std::vector<std::int32_t>>();
    std::vector<float> logits = t.forward(*cache, {ids, positions, step["cache_start"].get<std::int64_t>(), rows});
    got.insert(got.end(), logits.begin(), logits.end());
  }
  return got;
}

class CudaForwardFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaForwardFixture, MatchesCpuAndReference) {
  WEDLM_REQUIRE_CUDA_DEVICE();
  const std::string dir = test::fixture_model(GetParam());
  json manifest = json::parse(test::read_text(dir + "/cases.json"));
  auto ck = open_checkpoint(dir);
  auto cpu = make_cpu_backend();
  auto gpu = make_cuda_backend();
  Transformer cpu_model(*ck, *cpu, 8);
  Transformer gpu_model(*ck, *gpu, 8);  // small chunks: chunked prefill on the GPU too
  const std::int64_t vocab = ck->config.vocab_size;
  for (const json& c : manifest["cases"]) {
    const std::string name = c["name"].get<std::string>();
    SCOPED_TRACE(name);
    std::vector<float> want = run_case(cpu_model, c);
    std::vector<float> got = run_case(gpu_model, c);
    ASSERT_EQ(got.size(), want.size());
    test::Errors e = test::compare(got, want);
    std::printf("%s/%s: rel L2 %.2e, max abs %.3e (largest logit %.2f)", GetParam().c_str(), name.c_str(), e.rel_l2,
                e.max_abs, e.max_ref);
    EXPECT_LT(e.rel_l2, kRelL2);
    EXPECT_LT(e.max_abs, kMaxAbsOfLargest * e.max_ref);
    if (c.contains("native_logits_file") && *ck->tensors.embed->dtype == DType::BF16) {
      // The native file covers the main logits file's rows only (no step-1 rows).
      std::vector<float> reference = test::read_f32_file(dir + "/" + c["logits_file"].get<std::string>());
      std::vector<float> native = test::read_f32_file(dir + "/" + c["native_logits_file"].get<std::string>());
      std::vector<float> tail(got.end() - static_cast<std::ptrdiff_t>(reference.size()), got.end());
      test::Errors ours = test::compare(tail, reference), theirs = test::compare(native, reference);
      std::printf(", vs float64: ours %.2e / transformers bf16 %.2e rel L2, %.3f / %.3f max abs", ours.rel_l2,
                  theirs.rel_l2, ours.max_abs, theirs.max_abs);
      EXPECT_LT(ours.rel_l2, kVsNative * theirs.rel_l2);
      EXPECT_LT(ours.max_abs, kVsNative * theirs.max_abs);
    }
    std::printf("\n");
    const double flip_gap = 2 * kMaxAbsOfLargest * e.max_ref;
    for (std::size_t r = 0; r < want.size() / static_cast<std::size_t>(vocab); ++r) {
      const float* w = want.data() + r * static_cast<std::size_t>(vocab);
      const float* g = got.data() + r * static_cast<std::size_t>(vocab);
      std::vector<float> sorted(w, w + vocab);
      std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<float>());
      if (sorted[0] - sorted[1] > flip_gap) {
        EXPECT_EQ(std::max_element(g, g + vocab) - g, std::max_element(w, w + vocab) - w) << "row " << r;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllFixtureModels, CudaForwardFixture, ::testing::ValuesIn(test::fixture_model_names()),
                         [](const auto& info) { return info.param; });

// Two sequences in scattered blocks of one pool, in one batch, chunk boundaries cutting through
// both: the same logits as the CPU backend gives for the same batch.
TEST(CudaBatchedForward, PagedSequencesMatchCpu) {
  WEDLM_REQUIRE_CUDA_DEVICE();
  const std::string dir = test::fixture_model("qwen2_bf16_untied_gqa_hd24");
  auto ck = open_checkpoint(dir);
  auto cpu = make_cpu_backend();
  auto gpu = make_cuda_backend();
  std::vector<float> results[2];
  int i = 0;
  for (Backend* b : {cpu.get(), gpu.get()}) {
    Transformer t(*ck, *b, 5);
    auto cache = t.make_kv_cache(32, 4);
    const std::vector<std::int32_t> table_a = {5, 2, 7, 0}, table_b = {1, 6, 3, 4};
    std::vector<std::int32_t> ids_a = {34, 330, 152, 130, 317, 278, 154, 206, 89, 234, 253, 229};
    std::vector<std::int32_t> pos_a(ids_a.size()), rows_a(ids_a.size());
    std::iota(pos_a.begin(), pos_a.end(), 0);
    std::iota(rows_a.begin(), rows_a.end(), 0);
    std::vector<std::int32_t> ids_b = {389, 164, 351, 99, 127, 244, 318, 355}, pos_b(ids_b.size());
    std::iota(pos_b.begin(), pos_b.end(), 0);
    std::vector<std::int32_t> ids_b1 = {161, 422, 141, 500, 500, 500}, pos_b1 = {8, 10, 11, 9, 12, 13};
    std::vector<std::int32_t> rows_b1 = {0, 1, 2, 3, 4, 5};
    ForwardRequest first[] = {{ids_b, pos_b, 0, {}, table_b}, {ids_a, pos_a, 0, rows_a, table_a}};
    results[i] = t.forward_batch(*cache, first);
    ForwardRequest second[] = {{ids_b1, pos_b1, 8, rows_b1, table_b}};
    std::vector<float> more = t.forward_batch(*cache, second);
    results[i].insert(results[i].end(), more.begin(), more.end());
    ++i;
  }
  test::Errors e = test::compare(results[1], results[0]);
  EXPECT_LT(e.rel_l2, kRelL2);
  EXPECT_LT(e.max_abs, kMaxAbsOfLargest * e.max_ref);
}

}  // namespace
}  // namespace wedlm
