#include "model/config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace wedlm {

namespace {

using json = nlohmann::json;

json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open", path);
  try {
    return json::parse(in);
  } catch (const json::parse_error& e) {
    fail("{}: invalid JSON: {}", path, e.what());
  }
}

// Field readers: a missing optional field keeps the default; a present field of the wrong type
// is an error naming the file and the field.
bool has(const json& j, const char* key) { return j.contains(key) && !j.at(key).is_null(); }

std::int64_t read_int(const json& j, const char* key, const std::string& source) {
  if (!has(j, key)) fail("{}: required field '{}' is missing", source, key);
  const json& v = j.at(key);
  if (!v.is_number_integer()) fail("{}: field '{}' must be an integer, got {}", source, key, v.dump());
  return v.get<std::int64_t>();
}

std::int64_t read_int_or(const json& j, const char* key, std::int64_t fallback, const std::string& source) {
  return has(j, key) ? read_int(j, key, source) : fallback;
}

double read_number_or(const json& j, const char* key, double fallback, const std::string& source) {
  if (!has(j, key)) return fallback;
  const json& v = j.at(key);
  if (!v.is_number()) fail("{}: field '{}' must be a number, got {}", source, key, v.dump());
  return v.get<double>();
}

bool read_bool_or(const json& j, const char* key, bool fallback, const std::string& source) {
  if (!has(j, key)) return fallback;
  const json& v = j.at(key);
  if (!v.is_boolean()) fail("{}: field '{}' must be true or false, got {}", source, key, v.dump());
  return v.get<bool>();
}

std::string read_string_or(const json& j, const char* key, const std::string& fallback, const std::string& source) {
  if (!has(j, key)) return fallback;
  const json& v = j.at(key);
  if (!v.is_string()) fail("{}: field '{}' must be a string, got {}", source, key, v.dump());
  return v.get<std::string>();
}

std::vector<std::int64_t> read_ids(const json& j, const char* key, const std::string& source) {
  std::vector<std::int64_t> ids;
  if (!has(j, key)) return ids;
  const json& v = j.at(key);
  if (v.is_number_integer()) {
    ids.push_back(v.get<std::int64_t>());
  } else if (v.is_array()) {
    for (const json& item : v) {
      if (!item.is_number_integer()) fail("{}: field '{}' must hold integers, got {}", source, key, item.dump());
      ids.push_back(item.get<std::int64_t>());
    }
  } else {
    fail("{}: field '{}' must be an integer or a list of integers, got {}", source, key, v.dump());
  }
  return ids;
}

void require_positive(std::int64_t value, const char* key, const std::string& source) {
  if (value <= 0) fail("{}: field '{}' must be positive, got {}", source, key, value);
}

}  // namespace

std::int64_t ModelConfig::parameter_count() const {
  std::int64_t attention = hidden_size * (q_size() + 2 * kv_size()) + q_size() * hidden_size;
  if (attention_bias) attention += q_size() + 2 * kv_size();
  if (qk_norm) attention += 2 * head_dim;
  std::int64_t mlp = 3 * hidden_size * intermediate_size;
  std::int64_t per_layer = attention + mlp + 2 * hidden_size;
  std::int64_t embedding = vocab_size * hidden_size;
  return num_layers * per_layer + hidden_size + embedding * (tie_word_embeddings ? 1 : 2);
}

ModelConfig parse_model_config(const json& j, const std::string& source) {
  if (!j.is_object()) fail("{}: expected a JSON object", source);
  ModelConfig c;
  if (has(j, "architectures") && j.at("architectures").is_array() && !j.at("architectures").empty() &&
      j.at("architectures")[0].is_string()) {
    c.architecture = j.at("architectures")[0].get<std::string>();
  }
  c.vocab_size = read_int(j, "vocab_size", source);
  c.hidden_size = read_int(j, "hidden_size", source);
  c.intermediate_size = read_int(j, "intermediate_size", source);
  c.num_layers = read_int(j, "num_hidden_layers", source);
  c.num_heads = read_int(j, "num_attention_heads", source);
  require_positive(c.vocab_size, "vocab_size", source);
  require_positive(c.hidden_size, "hidden_size", source);
  require_positive(c.intermediate_size, "intermediate_size", source);
  require_positive(c.num_layers, "num_hidden_layers", source);
  require_positive(c.num_heads, "num_attention_heads", source);
  c.num_kv_heads = read_int_or(j, "num_key_value_heads", c.num_heads, source);
  require_positive(c.num_kv_heads, "num_key_value_heads", source);
  if (c.num_heads % c.num_kv_heads != 0) {
    fail("{}: num_attention_heads ({}) must be a multiple of num_key_value_heads ({})", source, c.num_heads,
         c.num_kv_heads);
  }
  if (c.hidden_size % c.num_heads != 0 && !has(j, "head_dim")) {
    fail("{}: head_dim is missing and hidden_size ({}) is not a multiple of num_attention_heads ({})", source,
         c.hidden_size, c.num_heads);
  }
  c.head_dim = read_int_or(j, "head_dim", c.hidden_size / c.num_heads, source);
  require_positive(c.head_dim, "head_dim", source);
  if (c.head_dim % 2 != 0) fail("{}: head_dim must be even for rotary embeddings, got {}", source, c.head_dim);
  c.rms_norm_eps = read_number_or(j, "rms_norm_eps", 1e-6, source);
  if (!(c.rms_norm_eps > 0)) fail("{}: field 'rms_norm_eps' must be positive", source);

  // transformers 5 writes rope settings as `rope_parameters`; accept its default kind only.
  double theta = 10000.0;
  if (has(j, "rope_parameters")) {
    const json& rp = j.at("rope_parameters");
    if (!rp.is_object()) fail("{}: field 'rope_parameters' must be an object", source);
    std::string type = read_string_or(rp, "rope_type", "default", source + " rope_parameters");
    if (type != "default") {
      fail("{}: rope_parameters.rope_type '{}' is not supported (only plain RoPE is)", source, type);
    }
    theta = read_number_or(rp, "rope_theta", theta, source + " rope_parameters");
  }
  c.rope_theta = read_number_or(j, "rope_theta", theta, source);
  if (!(c.rope_theta > 0)) fail("{}: field 'rope_theta' must be positive", source);
  if (has(j, "rope_scaling")) {
    fail("{}: field 'rope_scaling' is set ({}); RoPE scaling is not supported yet (it must be null)", source,
         j.at("rope_scaling").dump());
  }
  std::string act = read_string_or(j, "hidden_act", "silu", source);
  if (act != "silu") fail("{}: field 'hidden_act' is '{}'; only 'silu' is supported", source, act);

  c.tie_word_embeddings = read_bool_or(j, "tie_word_embeddings", false, source);
  c.attention_bias = read_bool_or(j, "attention_bias", true, source);
  c.qk_norm = read_bool_or(j, "qk_norm", !c.attention_bias, source);
  c.mask_token_id = read_int_or(j, "mask_token_id", 151665, source);
  if (c.mask_token_id < 0 || c.mask_token_id >= c.vocab_size) {
    // Base AR checkpoints (Qwen2/Qwen3) may have no mask token inside a small vocabulary; WeDLM
    // decoding checks this again when it needs the mask.
    c.mask_token_id = -1;
  }
  c.eos_token_ids = read_ids(j, "eos_token_id", source);
  c.max_position_embeddings = read_int_or(j, "max_position_embeddings", 32768, source);
  require_positive(c.max_position_embeddings, "max_position_embeddings", source);
  c.torch_dtype = read_string_or(j, "torch_dtype", read_string_or(j, "dtype", "", source), source);
  return c;
}

ModelConfig load_model_config(const std::string& config_path) {
  return parse_model_config(read_json_file(config_path), config_path);
}

void merge_generation_config(ModelConfig& config, const std::string& path) {
  if (!std::filesystem::exists(path)) return;
  json j = read_json_file(path);
  if (!j.is_object()) fail("{}: expected a JSON object", path);
  for (std::int64_t id : read_ids(j, "eos_token_id", path)) {
    if (std::find(config.eos_token_ids.begin(), config.eos_token_ids.end(), id) == config.eos_token_ids.end()) {
      config.eos_token_ids.push_back(id);
    }
  }
}

json model_config_to_json(const ModelConfig& c) {
  return json{{"architecture", c.architecture},
              {"vocab_size", c.vocab_size},
              {"hidden_size", c.hidden_size},
              {"intermediate_size", c.intermediate_size},
              {"num_hidden_layers", c.num_layers},
              {"num_attention_heads", c.num_heads},
              {"num_key_value_heads", c.num_kv_heads},
              {"head_dim", c.head_dim},
              {"rms_norm_eps", c.rms_norm_eps},
              {"rope_theta", c.rope_theta},
              {"tie_word_embeddings", c.tie_word_embeddings},
              {"attention_bias", c.attention_bias},
              {"qk_norm", c.qk_norm},
              {"mask_token_id", c.mask_token_id},
              {"eos_token_id", c.eos_token_ids},
              {"max_position_embeddings", c.max_position_embeddings},
              {"torch_dtype", c.torch_dtype}};
}

}  // namespace wedlm
