#pragma once
// The architecture hyper-parameters read from a checkpoint's config.json (and
// generation_config.json), validated once so the rest of the engine can trust them.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace wedlm {

struct ModelConfig {
  std::string architecture;  // e.g. "Qwen3ForCausalLM"; informational
  std::int64_t vocab_size = 0;
  std::int64_t hidden_size = 0;
  std::int64_t intermediate_size = 0;
  std::int64_t num_layers = 0;
  std::int64_t num_heads = 0;
  std::int64_t num_kv_heads = 0;
  std::int64_t head_dim = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;
  bool attention_bias = true;
  bool qk_norm = false;
  std::int64_t mask_token_id = 151665;
  std::vector<std::int64_t> eos_token_ids;
  std::int64_t max_position_embeddings = 32768;
  std::string torch_dtype;  // as written in config.json, may be empty

  std::int64_t q_size() const { return num_heads * head_dim; }
  std::int64_t kv_size() const { return num_kv_heads * head_dim; }
  // Total parameter count implied by the shapes (embedding and lm_head counted separately
  // unless tied).
  std::int64_t parameter_count() const;
};

// Parses and validates. `source` names the file in error messages.
ModelConfig parse_model_config(const nlohmann::json& json, const std::string& source);
ModelConfig load_model_config(const std::string& config_path);
// Adds eos ids from generation_config.json (if the file exists) to `config.eos_token_ids`.
void merge_generation_config(ModelConfig& config, const std::string& generation_config_path);

nlohmann::json model_config_to_json(const ModelConfig& config);

}  // namespace wedlm
