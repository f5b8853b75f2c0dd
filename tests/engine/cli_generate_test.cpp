// `wedlm generate` and `wedlm chat` as a user runs them.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/test_support.h"

namespace wedlm {
namespace {

using json = nlohmann::json;

std::string join_ids(const std::vector<int>& ids) {
  std::string s;
  for (int id : ids) {
    if (!s.empty()) s += ',';
    s += std::to_string(id);
  }
  return s;
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// The reference decoding case with default WeDLM parameters, replayed through the CLI.
TEST(CliGenerate, JsonMatchesReferenceCase) {
  const std::string root = test::fixtures_dir();
  json fixture = json::parse(test::read_text(root + "/decode/qwen3_tiny.json"));
  const json* chosen = nullptr;
  for (const json& c : fixture["cases"]) {
    const json& p = c["params"];
    if (c["mode"] == "wedlm" && !c["fragile"].get<bool>() && p["window"] == 16 && p["entropy_threshold"] == 0.4 &&
        p["position_penalty"] == 0.02 && p["stop_ids"].empty() && p["kv_space"].is_null()) {
      chosen = &c;
      break;
    }
  }
  ASSERT_NE(chosen, nullptr);
  auto r = test::run_cli("generate --json --ignore-eos --model " + root + "/decode_models/qwen3_tiny --prompt-ids " +
                         join_ids((*chosen)["prompt"].get<std::vector<int>>()) + " --max-tokens " +
                         std::to_string((*chosen)["params"]["max_tokens"].get<int>()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json out = json::parse(r.out);
  EXPECT_EQ(out["output_ids"], (*chosen)["output"]);
  EXPECT_EQ(out["finish_reason"], (*chosen)["finish_reason"]);
  EXPECT_EQ(out["forwards"], (*chosen)["forwards"]);
  EXPECT_EQ(out["prompt_tokens"], (*chosen)["prompt"].size());
  EXPECT_EQ(out["completion_tokens"], (*chosen)["output"].size());
  EXPECT_NEAR(out["tokens_per_forward"].get<double>(), (*chosen)["tokens_per_forward"].get<double>(), 1e-6);
  for (const char* key : {"prefill_ms", "decode_ms", "decode_tokens_per_s"}) {
    ASSERT_TRUE(out.contains(key)) << key;
    EXPECT_GE(out[key].get<double>(), 0.0);
  }
  EXPECT_FALSE(out.contains("text"));  // no tokenizer in that directory
}

// A random-weight checkpoint with the real tokenizer, written by `wedlm synth`.
class TextModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    test::synth_tiny_with_tokenizer(*dir_);
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string model() { return dir_->file("m"); }
  static test::TempDir* dir_;
};
test::TempDir* TextModel::dir_ = nullptr;

TEST_F(TextModel, StreamedTextEqualsJsonTextAndDetokenizedIds) {
  const std::string args = " --model " + model() + " --prompt 'Hello there' --max-tokens 12 --ignore-eos";
  auto js = test::run_cli("generate --json" + args);
  ASSERT_EQ(js.exit_code, 0) << js.err;
  json out = json::parse(js.out);
  ASSERT_EQ(out["output_ids"].size(), 12u);
  auto streamed = test::run_cli("generate" + args);
  ASSERT_EQ(streamed.exit_code, 0) << streamed.err;
  EXPECT_EQ(streamed.out, out["text"].get<std::string>() + "\n");
  EXPECT_NE(streamed.err.find("tokens/forward"), std::string::npos);  // the summary line
  auto detok = test::run_cli("detokenize --model " + model() + " --ids " + join_ids(out["output_ids"].get<std::vector<int>>()));
  ASSERT_EQ(detok.exit_code, 0) << detok.err;
  EXPECT_NE(detok.out.find(out["text"].get<std::string>()), std::string::npos);
}

TEST_F(TextModel, StopStringEndsTextBeforeIt) {
  const std::string args = " --json --model " + model() + " --prompt 'Once upon' --max-tokens 16 --ignore-eos";
  json full = json::parse(test::run_cli("generate" + args).out);
  const std::string text = full["text"];
  ASSERT_GT(text.size(), 8u);
  // A stop string taken from the middle of the unconstrained output.
  const std::string stop = text.substr(text.size() / 2, 3);
  auto r = test::run_cli("generate" + args + " --stop " + quote(stop));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json out = json::parse(r.out);
  EXPECT_EQ(out["finish_reason"], "stop");
  EXPECT_EQ(out["text"], text.substr(0, text.find(stop)));
}

TEST_F(TextModel, ChatModesAndStopId) {
  auto ar = test::run_cli("generate --json --chat --system 'Be brief.' --mode ar --model " + model() +
                          " --prompt hi --max-tokens 6");
  ASSERT_EQ(ar.exit_code, 0) << ar.err;
  json out = json::parse(ar.out);
  EXPECT_EQ(out["forwards"].get<int>() + 1, out["completion_tokens"].get<int>());  // the prefill gives the first
  // --stop-id: the first generated token as a stop id ends at once, and is kept.
  const int first = out["output_ids"][0];
  auto stopped = test::run_cli("generate --json --chat --autoregressive --model " + model() +
                               " --prompt hi --max-tokens 6 --system 'Be brief.' --stop-id " + std::to_string(first));
  json s = json::parse(stopped.out);
  EXPECT_EQ(s["output_ids"], json::array({first}));
  EXPECT_EQ(s["finish_reason"], "stop");
}

TEST_F(TextModel, ChatReplKeepsHistoryAndResets) {
  auto r = test::run_cli("chat --model " + model() + " --max-tokens 4 --ignore-eos", "hi\nhow are you\n/reset\nhello\n/exit\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // One answer line per user turn and one summary per answer.
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 3);
  EXPECT_NE(r.err.find("conversation cleared"), std::string::npos);
  std::size_t summaries = 0;
  for (std::size_t at = r.err.find("tokens/forward"); at != std::string::npos; at = r.err.find("tokens/forward", at + 1)) {
    ++summaries;
  }
  EXPECT_EQ(summaries, 3u);
}

TEST_F(TextModel, BadParametersFailClearly) {
  const std::string m = " --model " + model() + " --prompt hi";
  struct Case {
    std::string args, fragment;
  };
  for (const Case& c : std::vector<Case>{
           {"generate" + m + " --window 0", "--window"},
           {"generate" + m + " --entropy-threshold -1", "--entropy-threshold"},
           {"generate" + m + " --top-p 0", "--top-p"},
           {"generate" + m + " --top-p 1.5", "--top-p"},
           {"generate" + m + " --temperature -0.5", "--temperature"},
           {"generate" + m + " --max-tokens 0", "--max-tokens"},
           {"generate" + m + " --mode fast", "--mode"},
           {"generate" + m + " --frobnicate", "frobnicate"},
           {"generate" + m + " --prompt-ids 1,2", "exactly one"},
           {"generate --model " + model() + " --prompt-ids 1,2,3,4,5 --context 5", "context"},
           {"generate --model " + model() + " --prompt-ids 1,x", "--prompt-ids"},
           {"generate --model " + test::fixtures_dir() + "/decode_models/qwen3_tiny --prompt hi", "tokenizer"},
           {"generate" + m + " --stop ''", "--stop"},
       }) {
    auto r = test::run_cli(c.args);
    EXPECT_NE(r.exit_code, 0) << c.args;
    EXPECT_NE(r.err.find(c.fragment), std::string::npos) << c.args << "\nstderr: " << r.err;
  }
}

}  // namespace
}  // namespace wedlm
