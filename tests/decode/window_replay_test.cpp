// Replays the Python reference's per-step records (tests/fixtures/decode/window_replay.json,
// made by tools/make_decode_fixtures.py from the transformers model) through WedlmWindow alone:
// same rows and positions planned, same tokens committed, same end. The model is replaced by
// the recorded mask-row entropies and argmax tokens.
#include <gtest/gtest.h>

#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "decode/window.h"

namespace wedlm {
namespace {

using nlohmann::json;

constexpr double kFragileMargin = 1e-3;  // fp32 entropies may flip decisions closer than this

json load_replay() {
  std::ifstream in(std::string(WEDLM_DECODE_FIXTURES) + "/window_replay.json");
  if (!in) return json();
  return json::parse(in);
}

bool fragile(const json& c) {
  for (const char* key : {"entropy_margin", "argmin_gap"}) {
    if (!c[key].is_null() && c[key].get<double>() < kFragileMargin) return true;
  }
  return false;
}

void replay(const json& c) {
  SCOPED_TRACE(c["id"].get<std::string>());
  const json& p = c["params"];
  const int64_t kv_space = p["kv_space"].is_null() ? std::numeric_limits<int32_t>::max()
                                                   : p["kv_space"].get<int64_t>();
  WedlmWindow window({.window = p["window"].get<int32_t>(),
                      .entropy_threshold = p["entropy_threshold"].get<double>(),
                      .position_penalty = p["position_penalty"].get<double>()},
                     c["mask_token_id"].get<int32_t>(),
                     {.max_tokens = p["max_tokens"].get<int32_t>(),
                      .stop_ids = p["stop_ids"].get<std::vector<int32_t>>(),
                      .kv_space = kv_space});
  size_t index = 0;
  for (const json& step : c["steps"]) {
    SCOPED_TRACE("step " + std::to_string(index++));
    ASSERT_FALSE(window.finished());
    const StepPlan plan = window.plan();
    EXPECT_EQ(plan.commit_count, step["commit_count"].get<int32_t>());
    std::vector<std::vector<int32_t>> rows;
    for (const auto& r : plan.rows) rows.push_back({r.token, r.window_index});
    ASSERT_EQ(rows, step["rows"].get<std::vector<std::vector<int32_t>>>());
    const auto entropies = step["mask_entropy"].get<std::vector<double>>();
    const auto tokens = step["mask_token"].get<std::vector<int32_t>>();
    ASSERT_EQ(static_cast<int32_t>(entropies.size()), plan.mask_row_count());
    std::vector<MaskRowResult> results;
    for (size_t j = 0; j < entropies.size(); ++j)
      results.push_back({static_cast<float>(entropies[j]), tokens[j]});
    const StepResult r = window.apply(results);
    EXPECT_EQ(r.committed, step["committed"].get<std::vector<int32_t>>());
  }
  EXPECT_TRUE(window.finished());
  EXPECT_EQ(window.committed(), c["output"].get<std::vector<int32_t>>());
  EXPECT_EQ(to_string(window.finish_reason()), c["finish_reason"].get<std::string>());
  EXPECT_EQ(window.steps(), static_cast<int64_t>(c["steps"].size()));
}

TEST(WindowReplay, MatchesTheReferenceStepByStep) {
  const json doc = load_replay();
  ASSERT_TRUE(doc.is_object()) << "missing " << WEDLM_DECODE_FIXTURES << "/window_replay.json";
  int replayed = 0;
  for (const json& c : doc["cases"]) {
    if (fragile(c)) continue;
    replay(c);
    ++replayed;
  }
  EXPECT_GE(replayed, 10);
}

}  // namespace
}  // namespace wedlm
