// The model commands of the CLI, run as a user would.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/test_support.h"

namespace wedlm {
namespace {

using json = nlohmann::json;

TEST(CliInspect, PrintsConfigAndChecksTensors) {
  auto r = test::run_cli("inspect --json --model " + test::fixture_model("qwen2_bf16_untied_gqa_hd24"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["config"]["num_hidden_layers"], 3);
  EXPECT_EQ(j["config"]["head_dim"], 24);
  EXPECT_EQ(j["config"]["eos_token_id"], json::array({2, 3}));  // config + generation_config
  EXPECT_EQ(j["bytes_by_dtype"].begin().key(), "BF16");
}

TEST(CliForward, TopLogitMatchesReference) {
  // The permuted window case of the fixture, through the CLI (one forward, no prefix).
  const std::string dir = test::fixture_model("qwen3_f32_untied_gqa_hd32");
  json cases = json::parse(test::read_text(dir + "/cases.json"));
  const json& prefill = cases["cases"][0];
  ASSERT_EQ(prefill["name"], "prefill");
  auto ids = prefill["steps"][0]["ids"].get<std::vector<int>>();
  std::string id_text;
  for (int id : ids) {
    if (!id_text.empty()) id_text += ',';
    id_text += std::to_string(id);
  }
  auto r = test::run_cli("forward --json --all-rows --top-k 1 --model " + dir + " --ids " + id_text);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json rows = json::parse(r.out);
  std::vector<float> expected = test::read_f32_file(dir + "/prefill.f32");
  ASSERT_EQ(rows.size(), ids.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const float* e = expected.data() + i * 512;
    int best = static_cast<int>(std::max_element(e, e + 512) - e);
    EXPECT_EQ(rows[i]["top"][0]["id"].get<int>(), best);
    EXPECT_NEAR(rows[i]["top"][0]["logit"].get<double>(), e[best], 1e-4);
  }
}

TEST(CliErrors, ClearMessagesAndNonZeroExit) {
  const std::string dir = test::fixture_model("qwen3_f32_untied_gqa_hd32");
  struct Case {
    std::string args, fragment;
  };
  for (const Case& c : std::vector<Case>{
           {"forward --model " + dir + " --ids 1,x,3", "--ids"},
           {"forward --model " + dir + " --ids 1,2 --positions 0", "--positions"},
           {"forward --model " + dir + " --ids 99999", "vocabulary"},
           {"forward --model /no/such/dir --ids 1", "/no/such/dir"},
           {"forward --model " + dir + " --ids 1 --device tpu", "tpu"},
           {"inspect --model " + dir + " --bogus-flag", "bogus"},
           {"inspect", "--model"},
           {"bench --synthetic 3b", "3b"},
       }) {
    auto r = test::run_cli(c.args);
    EXPECT_NE(r.exit_code, 0) << c.args;
    EXPECT_NE(r.err.find(c.fragment), std::string::npos) << c.args << "\nstderr: " << r.err;
  }
}

}  // namespace
}  // namespace wedlm
