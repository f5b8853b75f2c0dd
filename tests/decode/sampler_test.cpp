#include "decode/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <vector>

#include "util/error.h"

namespace wedlm {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<float> log_of(std::vector<double> probs) {
  std::vector<float> out;
  for (double p : probs) out.push_back(static_cast<float>(std::log(p)));
  return out;
}

// Token counts over many draws from one sampler.
std::map<int32_t, int> draw_counts(const SamplingParams& params, const std::vector<float>& logits, int draws) {
  Sampler sampler(params);
  std::map<int32_t, int> counts;
  for (int i = 0; i < draws; ++i) ++counts[sampler.sample(logits.data(), logits.size())];
  return counts;
}

std::set<int32_t> keys(const std::map<int32_t, int>& counts) {
  std::set<int32_t> out;
  for (const auto& [token, n] : counts) out.insert(token);
  return out;
}

TEST(Argmax, FirstMaximumWinsTies) {
  const std::vector<float> logits{1, 3, 2, 3, -kInf};
  EXPECT_EQ(argmax(logits.data(), logits.size()), 1);
  const std::vector<float> nan_first{std::nanf(""), -5, -2};
  EXPECT_EQ(argmax(nan_first.data(), nan_first.size()), 2);
}

TEST(Entropy, UniformIsLogN) {
  const std::vector<float> logits(512, 3.25f);
  EXPECT_NEAR(entropy_of_logits(logits.data(), logits.size()), std::log(512.0), 1e-5);
}

TEST(Entropy, MatchesDoubleFormulaAndIgnoresMinusInfinity) {
  const std::vector<float> logits{2.0f, -1.0f, 0.5f, 7.25f, -kInf, 3.0f};
  double z = 0, h = 0;
  for (float l : logits) z += std::exp(double{l});
  for (float l : logits) {
    const double p = std::exp(double{l}) / z;
    if (p > 0) h -= p * std::log(p);
  }
  EXPECT_NEAR(entropy_of_logits(logits.data(), logits.size()), h, 1e-6);
}

TEST(Entropy, ConfidentRowIsZeroNotNegative) {
  const std::vector<float> logits{1000.0f, 0.0f, 0.0f, -3.0f};
  const float h = entropy_of_logits(logits.data(), logits.size());
  EXPECT_GE(h, 0.0f);
  EXPECT_LT(h, 1e-30f);
}

TEST(Sampler, GreedyIsArgmaxWithFirstOnTies) {
  Sampler sampler({.temperature = 0, .top_k = 0, .top_p = 1, .seed = 1});
  const std::vector<float> logits{0.5f, 2.0f, 2.0f, 1.0f};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(sampler.sample(logits.data(), logits.size()), 1);
}

TEST(Sampler, SameSeedSameTokensOtherSeedOtherTokens) {
  const std::vector<float> logits(64, 0.0f);  // flat: every draw is up to the generator
  auto run = [&](uint64_t seed) {
    Sampler sampler({.temperature = 1, .top_k = 0, .top_p = 1, .seed = seed});
    std::vector<int32_t> tokens;
    for (int i = 0; i < 40; ++i) tokens.push_back(sampler.sample(logits.data(), logits.size()));
    return tokens;
  };
  EXPECT_EQ(run(42), run(42));
  EXPECT_NE(run(42), run(43));
}

TEST(Sampler, DrawIsTheSpecifiedWalkOverAscendingIds) {
  // Weights 1, 2, 1 (ids 0, 1, 2): u * 4 in [0,1) -> 0, [1,3) -> 1, [3,4) -> 2.
  const std::vector<float> logits{0.0f, static_cast<float>(std::log(2.0)), 0.0f};
  for (uint64_t seed : {0ull, 1ull, 7ull, 12345ull, 99ull}) {
    std::mt19937_64 generator(seed);
    Sampler sampler({.temperature = 1, .top_k = 0, .top_p = 1, .seed = seed});
    for (int i = 0; i < 20; ++i) {
      const double target = static_cast<double>(generator() >> 11) * 0x1.0p-53 * 4.0;
      const int32_t want = target < 1.0 ? 0 : target < 3.0 ? 1 : 2;
      EXPECT_EQ(sampler.sample(logits.data(), logits.size()), want) << "seed " << seed << " draw " << i;
    }
  }
}

TEST(Sampler, FollowsTheDistribution) {
  const auto counts = draw_counts({.temperature = 1, .top_k = 0, .top_p = 1, .seed = 5},
                                  log_of({0.7, 0.2, 0.1}), 20000);
  EXPECT_NEAR(counts.at(0) / 20000.0, 0.7, 0.02);
  EXPECT_NEAR(counts.at(1) / 20000.0, 0.2, 0.02);
  EXPECT_NEAR(counts.at(2) / 20000.0, 0.1, 0.02);
}

TEST(Sampler, TopKKeepsTheKLargestLowerIdOnTies) {
  const std::vector<float> logits{5, 4, 4, 4, 1};
  const auto counts = draw_counts({.temperature = 1, .top_k = 2, .top_p = 1, .seed = 3}, logits, 2000);
  EXPECT_EQ(keys(counts), (std::set<int32_t>{0, 1}));
}

TEST(Sampler, TopPKeepsTheShortestPrefixReachingTheMass) {
  const auto logits = log_of({0.05, 0.5, 0.15, 0.3});  // order by logit: 1, 3, 2, 0
  auto kept = [&](double top_p) {
    return keys(draw_counts({.temperature = 1, .top_k = 0, .top_p = top_p, .seed = 11}, logits, 3000));
  };
  EXPECT_EQ(kept(0.4), (std::set<int32_t>{1}));  // at least one candidate
  EXPECT_EQ(kept(0.75), (std::set<int32_t>{1, 3}));
  EXPECT_EQ(kept(0.85), (std::set<int32_t>{1, 2, 3}));
  EXPECT_EQ(kept(1.0), (std::set<int32_t>{0, 1, 2, 3}));
}

TEST(Sampler, TopPReadsRawLogitsBeforeTemperature) {
  // p(0) = e^3 / (e^3 + 3) = 0.87 >= 0.8 on the raw logits: only token 0 survives, however flat
  // a temperature of 100 would make the distribution.
  const std::vector<float> logits{3, 0, 0, 0};
  const auto counts = draw_counts({.temperature = 100, .top_k = 0, .top_p = 0.8, .seed = 2}, logits, 500);
  EXPECT_EQ(keys(counts), (std::set<int32_t>{0}));
}

TEST(Sampler, TopPRenormalisesOverTheTopKSet) {
  // After top-k 2 the kept probabilities are 0.4/0.7 = 0.571 and 0.429, so top-p 0.55 keeps
  // token 0 alone (on the whole vocabulary 0.4 < 0.55 would have kept two).
  const auto logits = log_of({0.4, 0.3, 0.2, 0.1});
  const auto counts = draw_counts({.temperature = 1, .top_k = 2, .top_p = 0.55, .seed = 4}, logits, 500);
  EXPECT_EQ(keys(counts), (std::set<int32_t>{0}));
}

TEST(Sampler, BadParamsRejected) {
  EXPECT_THROW(Sampler({.temperature = -0.1, .top_k = 0, .top_p = 1, .seed = 0}), Error);
  EXPECT_THROW(Sampler({.temperature = std::nan(""), .top_k = 0, .top_p = 1, .seed = 0}), Error);
  EXPECT_THROW(Sampler({.temperature = 1, .top_k = -1, .top_p = 1, .seed = 0}), Error);
  EXPECT_THROW(Sampler({.temperature = 1, .top_k = 0, .top_p = 0, .seed = 0}), Error);
  EXPECT_THROW(Sampler({.temperature = 1, .top_k = 0, .top_p = 1.01, .seed = 0}), Error);
  EXPECT_THROW(Sampler({.temperature = 1, .top_k = 0, .top_p = -0.5, .seed = 0}), Error);
  EXPECT_NO_THROW(Sampler({.temperature = 0, .top_k = 5, .top_p = 0.01, .seed = 0}));
}

TEST(Sampler, NanLogitsRejectedWhenSampling) {
  Sampler sampler({.temperature = 1, .top_k = 0, .top_p = 1, .seed = 0});
  const std::vector<float> logits{0.0f, std::nanf("")};
  EXPECT_THROW(sampler.sample(logits.data(), logits.size()), Error);
}

}  // namespace
}  // namespace wedlm
