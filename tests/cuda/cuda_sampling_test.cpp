// Sampling on the GPU against the host sampler (decode/sampler.h, the written-out spec that the
// CPU backend runs): the same bf16 rows and uniforms must give the same tokens. The GPU sums in
// another order, so a token could differ only where a running sum falls within ~1e-16
// (relative) of a boundary; over these rows that chance is far below 1e-9.
#include <cmath>
#include <limits>
#include <numeric>

#include "cuda_test_support.h"
#include "model/checkpoint.h"
#include "model/transformer.h"
#include "support/test_support.h"
#include "util/error.h"

namespace wedlm {
namespace {

std::vector<float> to_float(const std::vector<std::uint16_t>& bits) {
  std::vector<float> out(bits.size());
  for (std::size_t i = 0; i < bits.size(); ++i) out[i] = bf16_to_float(bits[i]);
  return out;
}

// Rows of `vocab` bf16 logits, one shape of distribution each call.
std::vector<std::uint16_t> logit_rows(std::int64_t rows, std::int64_t vocab, int shape, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<std::uint16_t> v(static_cast<std::size_t>(rows * vocab));
  for (std::size_t i = 0; i < v.size(); ++i) {
    float x = normal(rng);
    switch (shape) {
      case 0: x *= 0.5f; break;   // flat: top-p keeps most of the vocabulary
      case 1: x *= 4.0f; break;   // a few hundred ids carry the mass
      case 2: x *= 40.0f; break;  // peaked: one or two ids
      case 3: x = std::round(x * 2.0f) * 0.5f; break;  // few distinct values: ties at every boundary
      case 4:  // a quarter -inf, the rest peaked at two equal maxima in every row
        x = i % 4 == 1 ? -std::numeric_limits<float>::infinity() : x * 3.0f;
        if (i % static_cast<std::size_t>(vocab) == 7 || i % static_cast<std::size_t>(vocab) == 11) x = 30.0f;
        break;
    }
    v[i] = float_to_bf16(x);
  }
  return v;
}

TEST(CudaSampling, TokensEqualTheHostSamplers) {
  WEDLM_REQUIRE_CUDA_DEVICE();
  auto gpu = make_cuda_backend();
  ASSERT_TRUE(cuda::samples_on_device(151936));  // the kernel runs, not the host fallback
  // Every combination of parameters on its own row, with its own uniform.
  std::vector<RowDraw> draws;
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  for (double temperature : {0.3, 1.0, 1.8}) {
    for (std::int32_t top_k : {0, 1, 7, 50, 200000}) {
      for (double top_p : {1.0, 0.95, 0.5, 0.02}) draws.push_back({temperature, top_k, top_p, uniform(rng)});
    }
  }
  draws.push_back({1.0, 0, 1.0, 0.0});                  // the smallest uniform
  draws.push_back({1.0, 0, 0.9, std::nextafter(1.0, 0.0)});  // the largest
  const std::int64_t rows = static_cast<std::int64_t>(draws.size());
  // The real vocabulary (16-byte loads), and one that is neither a multiple of 8 nor of 256.
  for (std::int64_t vocab : {std::int64_t{151936}, std::int64_t{1003}}) {
    for (int shape = 0; shape < 5; ++shape) {
      SCOPED_TRACE(testing::Message() << "vocab " << vocab << " shape " << shape);
      auto bits = logit_rows(rows, vocab, shape, static_cast<std::uint32_t>(17 * shape + vocab));
      TensorInfo t = test::bf16_tensor("logits", bits, rows, vocab);
      auto in = test::upload_rows(*gpu, t, rows, vocab);
      std::vector<std::int32_t> got(static_cast<std::size_t>(rows)), want(static_cast<std::size_t>(rows));
      gpu->sample_logits(in.matrix, draws, got.data());
      const std::vector<float> host = to_float(bits);
      sample_rows_on_host(host.data(), rows, vocab, vocab, draws, want.data());
      for (std::int64_t r = 0; r < rows; ++r) {
        const RowDraw& d = draws[static_cast<std::size_t>(r)];
        EXPECT_EQ(got[static_cast<std::size_t>(r)], want[static_cast<std::size_t>(r)])
            << "row " << r << ": temperature " << d.temperature << " top_k " << d.top_k << " top_p " << d.top_p
            << " u " << d.uniform;
      }
    }
  }
}

// A row the host sampler refuses is refused on the GPU too, with an error, not a token.
TEST(CudaSampling, RowsWithoutAFiniteMaximumAreErrors) {
  WEDLM_REQUIRE_CUDA_DEVICE();
  auto gpu = make_cuda_backend();
  const std::int64_t vocab = 4096;
  const RowDraw draw{1.0, 0, 1.0, 0.5};
  const float bad[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()};
  for (float value : bad) {
    SCOPED_TRACE(testing::Message() << "value " << value);
    std::vector<std::uint16_t> bits = logit_rows(1, vocab, 1, 3);
    bits[1234] = float_to_bf16(value);
    TensorInfo t = test::bf16_tensor("logits", bits, 1, vocab);
    auto in = test::upload_rows(*gpu, t, 1, vocab);
    std::int32_t token = 0;
    EXPECT_THROW(gpu->sample_logits(in.matrix, std::span<const RowDraw>(&draw, 1), &token), Error);
    const std::vector<float> host = to_float(bits);
    EXPECT_THROW(sample_rows_on_host(host.data(), 1, vocab, vocab, std::span<const RowDraw>(&draw, 1), &token), Error);
  }
  std::vector<std::uint16_t> all_minus_inf(static_cast<std::size_t>(vocab), float_to_bf16(-INFINITY));
  TensorInfo t = test::bf16_tensor("logits", all_minus_inf, 1, vocab);
  auto in = test::upload_rows(*gpu, t, 1, vocab);
  std::int32_t token = 0;
  EXPECT_THROW(gpu->sample_logits(in.matrix, std::span<const RowDraw>(&draw, 1), &token), Error);
}

// Through the transformer: two sequences in one forward, the first sampled, the second greedy,
// so the sampled rows are gathered out of the logits of all rows. The same forward returns the
// first sequence's whole rows, which the host sampler turns into the expected tokens.
TEST(CudaSampling, ForwardSamplesOnlyTheRowsWithDraws) {
  WEDLM_REQUIRE_CUDA_DEVICE();
  auto gpu = make_cuda_backend();
  auto ck = open_checkpoint(test::fixture_model("qwen3_f16_untied_gqa"));
  Transformer t(*ck, *gpu);
  const std::int64_t vocab = ck->config.vocab_size;
  auto cache = t.make_kv_cache(64, 4);
  const std::vector<std::int32_t> table_a = {0, 2, 4, 6}, table_b = {1, 3, 5, 7};
  const std::vector<std::int32_t> ids_a = {3, 1, 4, 1, 5, 9}, ids_b = {2, 7, 1, 8, 2};
  std::vector<std::int32_t> pos_a(ids_a.size()), pos_b(ids_b.size());
  std::iota(pos_a.begin(), pos_a.end(), 0);
  std::iota(pos_b.begin(), pos_b.end(), 0);
  const std::vector<std::int32_t> rows_a = {5, 1, 3}, rows_b = {4, 0};
  const std::vector<RowDraw> draws = {{0.8, 0, 0.9, 0.25}, {1.3, 5, 1.0, 0.75}, {1.0, 0, 1.0, 0.5}};
  ForwardRequest batch[] = {{ids_a, pos_a, 0, rows_a, table_a}, {ids_b, pos_b, 0, rows_b, table_b}};
  batch[0].full_logits = true;
  batch[0].draws = draws;
  batch[1].full_logits = false;
  ForwardOutput out;
  t.forward_rows(*cache, batch, out);
  ASSERT_EQ(out.token.size(), 5u);
  ASSERT_EQ(out.logits.size(), static_cast<std::size_t>(3 * vocab));
  std::vector<std::int32_t> want(3);
  sample_rows_on_host(out.logits.data(), 3, vocab, vocab, draws, want.data());
  EXPECT_EQ(std::vector<std::int32_t>(out.token.begin(), out.token.begin() + 3), want);
  EXPECT_EQ(out.token[3], out.argmax[3]);
  EXPECT_EQ(out.token[4], out.argmax[4]);
}

}  // namespace
}  // namespace wedlm
