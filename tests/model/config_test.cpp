#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "model/config.h"
#include "util/error.h"

namespace wedlm {
namespace {

using json = nlohmann::json;

json minimal() {
  return json{{"vocab_size", 100}, {"hidden_size", 64}, {"intermediate_size", 128}, {"num_hidden_layers", 2},
              {"num_attention_heads", 4}};
}

TEST(Config, Defaults) {
  ModelConfig c = parse_model_config(minimal(), "config.json");
  EXPECT_EQ(c.num_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_TRUE(c.attention_bias);  // Qwen2 convention
  EXPECT_FALSE(c.qk_norm);        // defaults to !attention_bias
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.mask_token_id, -1);  // 151665 does not fit a 100-token vocabulary
}

TEST(Config, Qwen3Style) {
  json j = minimal();
  j["vocab_size"] = 151936;
  j["attention_bias"] = false;
  j["head_dim"] = 128;
  j["eos_token_id"] = json::array({151645, 151643});
  j["rope_theta"] = 1000000;
  j["rope_scaling"] = nullptr;
  ModelConfig c = parse_model_config(j, "config.json");
  EXPECT_TRUE(c.qk_norm);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.mask_token_id, 151665);
  EXPECT_EQ(c.eos_token_ids, (std::vector<std::int64_t>{151645, 151643}));
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);
}

TEST(Config, RopeParametersOfTransformers5) {
  json j = minimal();
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 5000.0}};
  EXPECT_DOUBLE_EQ(parse_model_config(j, "c").rope_theta, 5000.0);
  j["rope_parameters"]["rope_type"] = "yarn";
  EXPECT_THROW(parse_model_config(j, "c"), Error);
}

TEST(Config, Rejections) {
  for (auto [key, value] : std::vector<std::pair<std::string, json>>{{"hidden_size", "64"},
                                                                        {"hidden_size", 0},
                                                                        {"num_attention_heads", 3.5},
                                                                        {"eos_token_id", "x"},
                                                                        {"tie_word_embeddings", 1},
                                                                        {"hidden_act", "relu"},
                                                                        {"head_dim", 15}}) {
    json j = minimal();
    j[key] = value;
    try {
      parse_model_config(j, "cfg.json");
      ADD_FAILURE() << key << " = " << value.dump() << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cfg.json"), std::string::npos);
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  }
  json j = minimal();
  j.erase("vocab_size");
  EXPECT_THROW(parse_model_config(j, "c"), Error);
}

}  // namespace
}  // namespace wedlm
