#include "decode/window.h"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "util/error.h"

namespace wedlm {
namespace {

constexpr int32_t kMask = 99;
constexpr float kHigh = 5.0f;  // an entropy no test threshold accepts

DecodeLimits limits(int32_t max_tokens, std::vector<int32_t> stops = {}, int64_t kv_space = 1000) {
  return {.max_tokens = max_tokens, .stop_ids = std::move(stops), .kv_space = kv_space};
}

WedlmParams params(int32_t window, double tau, double lambda) {
  return {.window = window, .entropy_threshold = tau, .position_penalty = lambda};
}

struct RowView {
  int32_t token;
  int32_t window_index;
  bool operator==(const RowView&) const = default;
};

std::vector<RowView> rows_of(const StepPlan& plan) {
  std::vector<RowView> out;
  for (const auto& r : plan.rows) out.push_back({r.token, r.window_index});
  return out;
}

// Mask results with the given entropies; the token of window index w is 100 + w, so a test can
// see which slot a committed token came from.
std::vector<MaskRowResult> results(const StepPlan& plan, std::vector<float> entropies) {
  EXPECT_EQ(static_cast<int32_t>(entropies.size()), plan.mask_row_count());
  std::vector<MaskRowResult> out;
  for (size_t j = 0; j < entropies.size(); ++j)
    out.push_back({entropies[j], 100 + plan.rows[plan.first_mask_row + j].window_index});
  return out;
}

std::vector<int32_t> filled_indices(const WedlmWindow& w) {
  std::vector<int32_t> out;
  for (size_t i = 0; i < w.slots().size(); ++i)
    if (w.slots()[i].filled) out.push_back(static_cast<int32_t>(i));
  return out;
}

TEST(WedlmWindow, FirstStepIsWMasksAtTheirOwnPositions) {
  WedlmWindow w(params(4, 0.5, 0.0), kMask, limits(10));
  const StepPlan plan = w.plan();
  EXPECT_EQ(rows_of(plan), (std::vector<RowView>{{kMask, 0}, {kMask, 1}, {kMask, 2}, {kMask, 3}}));
  EXPECT_EQ(plan.commit_count, 0);
  EXPECT_EQ(plan.first_mask_row, 0);
  for (const auto& r : plan.rows) EXPECT_TRUE(r.mask);
}

TEST(WedlmWindow, ThresholdIsStrict) {
  WedlmWindow w(params(4, 0.5, 0.0), kMask, limits(10));
  const StepPlan plan = w.plan();
  // 0.5 is exact in binary: A == tau must not fill; 0.25 < 0.5 does.
  const auto r = w.apply(results(plan, {0.5f, 0.25f, 0.5f, 0.25f}));
  EXPECT_TRUE(r.committed.empty());
  EXPECT_EQ(filled_indices(w), (std::vector<int32_t>{1, 3}));
}

TEST(WedlmWindow, ArgminFallbackTakesTheFirstOnTies) {
  WedlmWindow w(params(4, 0.5, 0.0), kMask, limits(10));
  const StepPlan plan = w.plan();
  w.apply(results(plan, {2.0f, 1.0f, 3.0f, 1.0f}));
  EXPECT_EQ(filled_indices(w), (std::vector<int32_t>{1}));
  EXPECT_EQ(w.slots()[1].token, 101);
}

TEST(WedlmWindow, ThresholdZeroFillsOneMaskPerStep) {
  WedlmWindow w(params(4, 0.0, 0.0), kMask, limits(10));
  const StepPlan plan = w.plan();
  w.apply(results(plan, {0.0f, 0.0f, 0.0f, 0.0f}));  // A < 0 never holds: fallback, first
  EXPECT_EQ(filled_indices(w), (std::vector<int32_t>{0}));
}

TEST(WedlmWindow, PositionPenaltyGrowsWithDistanceFromTheFirstMask) {
  WedlmWindow w(params(5, 0.35, 0.02), kMask, limits(10));
  const StepPlan plan = w.plan();
  // A = 0.30, 0.32, 0.34, 0.36, 0.38
  w.apply(results(plan, {0.3f, 0.3f, 0.3f, 0.3f, 0.3f}));
  EXPECT_EQ(filled_indices(w), (std::vector<int32_t>{0, 1, 2}));
}

TEST(WedlmWindow, PenaltyMakesTheFallbackPreferEarlierMasks) {
  WedlmWindow w(params(4, 0.1, 0.5), kMask, limits(10));
  const StepPlan plan = w.plan();
  // H favours index 3, but A = 1.0, 1.3, 1.6, 2.4 picks index 0.
  w.apply(results(plan, {1.0f, 0.8f, 0.6f, 0.9f}));
  EXPECT_EQ(filled_indices(w), (std::vector<int32_t>{0}));
}

TEST(WedlmWindow, ReorderRefillCommitAndPositions) {
  WedlmWindow w(params(4, 0.5, 0.25), kMask, limits(20));
  // Step 1: A = H + 0.25 d = 1.0, 0.35, 1.5, 0.75: only slot 1 is below 0.5.
  StepPlan plan = w.plan();
  auto r = w.apply(results(plan, {1.0f, 0.1f, 1.0f, 0.0f}));
  EXPECT_EQ(filled_indices(w), (std::vector<int32_t>{1}));
  // Step 2: slot 0 is a mask, so nothing commits and nothing is appended; the filled slot 1
  // comes first, then masks 0, 2, 3 at their own window indices.
  plan = w.plan();
  EXPECT_EQ(plan.commit_count, 0);
  EXPECT_EQ(rows_of(plan), (std::vector<RowView>{{101, 1}, {kMask, 0}, {kMask, 2}, {kMask, 3}}));
  EXPECT_EQ(plan.first_mask_row, 1);
  EXPECT_FALSE(plan.rows[0].mask);
  // d counts window indices from the first mask (index 0), not rows: masks 0, 2, 3 have
  // d = 0, 2, 3, so A = 0.2, 1.0, 0.75 and only slot 0 fills.
  r = w.apply(results(plan, {0.2f, 0.5f, 0.0f}));
  EXPECT_TRUE(r.committed.empty());
  EXPECT_EQ(filled_indices(w), (std::vector<int32_t>{0, 1}));
  // Step 3: p = 2 leading filled slots -> 2 masks appended (window 6), committed after forward.
  plan = w.plan();
  EXPECT_EQ(plan.commit_count, 2);
  EXPECT_EQ(rows_of(plan), (std::vector<RowView>{{100, 0}, {101, 1}, {kMask, 2}, {kMask, 3}, {kMask, 4}, {kMask, 5}}));
  r = w.apply(results(plan, {kHigh, 0.1f, kHigh, kHigh}));  // mask 3: A = 0.1 + 0.25 = 0.35
  EXPECT_EQ(r.committed, (std::vector<int32_t>{100, 101}));
  EXPECT_EQ(r.finish, FinishReason::none);
  // The window shifted by 2: old index 3 is now index 1; four slots again.
  ASSERT_EQ(w.slots().size(), 4u);
  EXPECT_EQ(filled_indices(w), (std::vector<int32_t>{1}));
  EXPECT_EQ(w.slots()[1].token, 103);
  EXPECT_EQ(w.committed(), (std::vector<int32_t>{100, 101}));
  EXPECT_EQ(w.steps(), 3);
}

TEST(WedlmWindow, FilledSlotsAreNeverRemasked) {
  WedlmWindow w(params(3, 0.5, 0.0), kMask, limits(20));
  StepPlan plan = w.plan();
  w.apply(results(plan, {kHigh, kHigh, 0.0f}));  // slot 2 <- 102
  // Step 2: the filled slot is a row with its token; the fallback fills slot 0.
  plan = w.plan();
  EXPECT_EQ(rows_of(plan), (std::vector<RowView>{{102, 2}, {kMask, 0}, {kMask, 1}}));
  w.apply(results(plan, {kHigh, kHigh}));
  EXPECT_EQ(filled_indices(w), (std::vector<int32_t>{0, 2}));
  // Step 3: slot 0 commits; slot 2 is still 102 whatever its neighbours' rows say.
  plan = w.plan();
  EXPECT_EQ(rows_of(plan), (std::vector<RowView>{{100, 0}, {102, 2}, {kMask, 1}, {kMask, 3}}));
  const auto r = w.apply(results(plan, {kHigh, kHigh}));
  EXPECT_EQ(r.committed, (std::vector<int32_t>{100}));
  EXPECT_EQ(w.slots()[1].filled, true);
  EXPECT_EQ(w.slots()[1].token, 102);
}

TEST(WedlmWindow, StopTokenIsKeptAndLaterSlotsDropped) {
  WedlmWindow w(params(4, 0.5, 0.0), kMask, limits(20, {101}));
  StepPlan plan = w.plan();
  w.apply(results(plan, {0.0f, 0.0f, 0.0f, 0.0f}));  // all four filled: 100..103
  plan = w.plan();
  EXPECT_EQ(plan.commit_count, 4);
  const auto r = w.apply(results(plan, {0.0f, 0.0f, 0.0f, 0.0f}));
  EXPECT_EQ(r.committed, (std::vector<int32_t>{100, 101}));
  EXPECT_EQ(r.finish, FinishReason::stop);
  EXPECT_TRUE(w.finished());
  EXPECT_EQ(w.committed(), (std::vector<int32_t>{100, 101}));
  EXPECT_THROW(w.plan(), std::logic_error);
}

TEST(WedlmWindow, MaxTokensTruncatesTheCommit) {
  WedlmWindow w(params(4, 0.5, 0.0), kMask, limits(3));
  StepPlan plan = w.plan();
  w.apply(results(plan, {0.0f, 0.0f, 0.0f, 0.0f}));
  plan = w.plan();
  const auto r = w.apply(results(plan, {0.0f, 0.0f, 0.0f, 0.0f}));
  EXPECT_EQ(r.committed, (std::vector<int32_t>{100, 101, 102}));
  EXPECT_EQ(r.finish, FinishReason::length);
  EXPECT_EQ(w.finish_reason(), FinishReason::length);
}

TEST(WedlmWindow, WindowOneCommitsOneTokenPerStep) {
  WedlmWindow w(params(1, 0.4, 0.02), kMask, limits(3));
  StepPlan plan = w.plan();
  EXPECT_EQ(rows_of(plan), (std::vector<RowView>{{kMask, 0}}));
  w.apply(results(plan, {kHigh}));  // the only mask is the argmin
  for (int32_t step = 0; step < 3; ++step) {
    plan = w.plan();
    EXPECT_EQ(plan.commit_count, 1);
    // The first mask sat at index 0 (token 100); later ones at index 1 of the refilled window.
    const int32_t token = step == 0 ? 100 : 101;
    EXPECT_EQ(rows_of(plan), (std::vector<RowView>{{token, 0}, {kMask, 1}}));
    const auto r = w.apply(results(plan, {kHigh}));
    EXPECT_EQ(r.committed, (std::vector<int32_t>{token}));
  }
  EXPECT_TRUE(w.finished());
  EXPECT_EQ(w.steps(), 4);  // n tokens cost n + 1 forwards
}

TEST(WedlmWindow, KvSpaceBoundsTheWindowAndEndsTheSequence) {
  WedlmWindow w(params(4, 0.5, 0.0), kMask, limits(20, {}, 3));
  StepPlan plan = w.plan();
  EXPECT_EQ(plan.rows.size(), 3u);  // min(W, kv_space)
  w.apply(results(plan, {0.0f, 0.0f, 0.0f}));
  plan = w.plan();
  EXPECT_EQ(plan.commit_count, 3);
  EXPECT_EQ(plan.rows.size(), 3u);  // no room to refill
  EXPECT_EQ(plan.mask_row_count(), 0);
  const auto r = w.apply({});
  EXPECT_EQ(r.committed.size(), 3u);
  EXPECT_EQ(r.finish, FinishReason::length);
}

TEST(WedlmWindow, RowsNeverExceedTheCacheSlotsLeft) {
  // Pseudo-random entropies over many steps: the planned rows must always fit.
  for (int64_t kv_space : {1, 2, 5, 9, 17, 40}) {
    WedlmWindow w(params(8, 0.6, 0.02), kMask, limits(100, {}, kv_space));
    uint32_t state = 12345u + static_cast<uint32_t>(kv_space);
    int guard = 0;
    while (!w.finished() && ++guard < 1000) {
      const StepPlan plan = w.plan();
      const int64_t left = kv_space - static_cast<int64_t>(w.committed().size());
      EXPECT_LE(static_cast<int64_t>(plan.rows.size()), left);
      std::vector<float> h;
      for (int32_t j = 0; j < plan.mask_row_count(); ++j) {
        state = state * 1664525u + 1013904223u;
        h.push_back(static_cast<float>(state >> 8) / static_cast<float>(1u << 24));
      }
      w.apply(results(plan, h));
    }
    EXPECT_TRUE(w.finished());
    EXPECT_EQ(static_cast<int64_t>(w.committed().size()), kv_space);
    EXPECT_EQ(w.finish_reason(), FinishReason::length);
  }
}

TEST(WedlmWindow, StepProtocolIsEnforced) {
  WedlmWindow w(params(2, 0.5, 0.0), kMask, limits(5));
  EXPECT_THROW(w.apply({}), std::logic_error);
  const StepPlan plan = w.plan();
  EXPECT_THROW(w.plan(), std::logic_error);
  const std::vector<MaskRowResult> one{{0.0f, 1}};
  EXPECT_THROW(w.apply(one), std::invalid_argument);
  EXPECT_NO_THROW(w.apply(results(plan, {0.0f, 0.0f})));
}

TEST(WedlmWindow, BadParamsRejected) {
  EXPECT_THROW(WedlmWindow(params(0, 0.4, 0.02), kMask, limits(5)), Error);
  EXPECT_THROW(WedlmWindow(params(4, -0.1, 0.02), kMask, limits(5)), Error);
  EXPECT_THROW(WedlmWindow(params(4, std::nan(""), 0.02), kMask, limits(5)), Error);
  EXPECT_THROW(WedlmWindow(params(4, 0.4, -0.01), kMask, limits(5)), Error);
  EXPECT_THROW(WedlmWindow(params(4, 0.4, 0.02), -1, limits(5)), Error);
  EXPECT_THROW(WedlmWindow(params(4, 0.4, 0.02), kMask, limits(0)), Error);
  EXPECT_THROW(WedlmWindow(params(4, 0.4, 0.02), kMask, limits(5, {}, 0)), Error);
}

}  // namespace
}  // namespace wedlm
