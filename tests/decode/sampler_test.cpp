#include "decode/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
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

// sampler.h's steps 2-6 written out literally, with the draw u given.
int32_t spec_sample(const std::vector<float>& logits, const SamplingParams& p, double u) {
  std::vector<int32_t> order(logits.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  std::size_t kept = p.top_k > 0 ? std::min<std::size_t>(order.size(), static_cast<std::size_t>(p.top_k)) : order.size();
  const double top = logits[order[0]];
  if (p.top_p < 1) {
    double z = 0, mass = 0;
    for (std::size_t i = 0; i < kept; ++i) z += std::exp(double{logits[order[i]]} - top);
    for (std::size_t i = 0; i < kept; ++i) {
      mass += std::exp(double{logits[order[i]]} - top) / z;
      if (mass >= p.top_p) {
        kept = i + 1;
        break;
      }
    }
  }
  order.resize(kept);
  std::sort(order.begin(), order.end());
  double total = 0, running = 0;
  for (int32_t id : order) total += std::exp((double{logits[id]} - top) / p.temperature);
  int32_t last = order[0];
  for (int32_t id : order) {
    const double w = std::exp((double{logits[id]} - top) / p.temperature);
    if (w <= 0) continue;
    running += w;
    last = id;
    if (running > u * total) return id;
  }
  return last;
}

// prepare() for every row of a step, then draw() in row order (how a sampled WeDLM step runs its
// rows in parallel) gives the specified tokens, for every kind of row: ties, -0.0 next to 0.0,
// -inf entries, top-k, top-p and both.
TEST(Sampler, PreparedRowsDrawnInOrderFollowTheSpecification) {
  std::mt19937 g(11);
  std::uniform_int_distribution<int> level(-40, 40);
  const size_t n = 3000;
  std::vector<std::vector<float>> rows(12, std::vector<float>(n));
  for (std::size_t r = 0; r < rows.size(); ++r) {
    for (float& l : rows[r]) l = static_cast<float>(level(g)) * 0.125f;  // many equal logits
    rows[r][r] = -0.0f;
    rows[r][r + 1] = 0.0f;
    rows[r][r + 2] = -kInf;
  }
  const SamplingParams cases[] = {{.temperature = 0.7, .top_k = 0, .top_p = 1, .seed = 5},
                                  {.temperature = 1.3, .top_k = 40, .top_p = 1, .seed = 6},
                                  {.temperature = 0.9, .top_k = 0, .top_p = 0.8, .seed = 7},
                                  {.temperature = 0.5, .top_k = 200, .top_p = 0.6, .seed = 8},
                                  {.temperature = 0, .top_k = 0, .top_p = 1, .seed = 9}};
  for (const SamplingParams& params : cases) {
    Sampler split(params), one_by_one(params);
    std::mt19937_64 generator(params.seed);
    std::vector<Sampler::Prepared> prepared(rows.size());
    for (int step = 0; step < 3; ++step) {
      for (std::size_t r = 0; r < rows.size(); ++r) split.prepare(rows[r].data(), n, prepared[r]);
      for (std::size_t r = 0; r < rows.size(); ++r) {
        const int32_t want = params.temperature == 0
                                 ? argmax(rows[r].data(), n)
                                 : spec_sample(rows[r], params, static_cast<double>(generator() >> 11) * 0x1.0p-53);
        const std::string where = "temperature " + std::to_string(params.temperature) + " top_k " +
                                  std::to_string(params.top_k) + " top_p " + std::to_string(params.top_p) +
                                  " step " + std::to_string(step) + " row " + std::to_string(r);
        EXPECT_EQ(split.draw(prepared[r]), want) << where;
        EXPECT_EQ(one_by_one.sample(rows[r].data(), n), want) << where;
      }
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
