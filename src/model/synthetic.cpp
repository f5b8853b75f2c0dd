#include "model/synthetic.h"

#include <omp.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace wedlm {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void store_value(std::uint8_t* data, DType dtype, std::size_t i, float v) {
  switch (dtype) {
    case DType::F32: reinterpret_cast<float*>(data)[i] = v; break;
    case DType::BF16: reinterpret_cast<std::uint16_t*>(data)[i] = float_to_bf16(v); break;
    case DType::F16: reinterpret_cast<std::uint16_t*>(data)[i] = float_to_f16(v); break;
  }
}

void fill_uniform(std::uint8_t* data, DType dtype, std::size_t count, float half_width, std::uint64_t seed) {
  constexpr std::size_t kChunk = 1 << 16;
  const std::int64_t chunks = static_cast<std::int64_t>((count + kChunk - 1) / kChunk);
#pragma omp parallel for schedule(static)
  for (std::int64_t c = 0; c < chunks; ++c) {
    std::uint64_t state = seed ^ (0x632be59bd9b4e019ull * static_cast<std::uint64_t>(c + 1));
    const std::size_t begin = static_cast<std::size_t>(c) * kChunk;
    const std::size_t end = std::min(count, begin + kChunk);
    for (std::size_t i = begin; i < end; ++i) {
      const std::uint64_t bits = splitmix64(state);
      const float unit = static_cast<float>(bits >> 40) * (1.0f / 16777216.0f);  // [0, 1)
      store_value(data, dtype, i, (2.0f * unit - 1.0f) * half_width);
    }
  }
}

void fill_constant(std::uint8_t* data, DType dtype, std::size_t count, float v) {
  for (std::size_t i = 0; i < count; ++i) store_value(data, dtype, i, v);
}

ModelConfig base_config() {
  ModelConfig c;
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 1000000.0;
  c.mask_token_id = 151665;
  c.eos_token_ids = {151645, 151643};
  c.torch_dtype = "bfloat16";
  return c;
}

}  // namespace

ModelConfig synthetic_config(const std::string& shape) {
  ModelConfig c = base_config();
  if (shape == "8b") {
    c.architecture = "Qwen3ForCausalLM";
    c.vocab_size = 151936;
    c.hidden_size = 4096;
    c.intermediate_size = 12288;
    c.num_layers = 36;
    c.num_heads = 32;
    c.num_kv_heads = 8;
    c.head_dim = 128;
    c.attention_bias = false;
    c.qk_norm = true;
    c.max_position_embeddings = 40960;
  } else if (shape == "7b") {
    c.architecture = "Qwen2ForCausalLM";
    c.vocab_size = 152064;
    c.hidden_size = 3584;
    c.intermediate_size = 18944;
    c.num_layers = 28;
    c.num_heads = 28;
    c.num_kv_heads = 4;
    c.head_dim = 128;
    c.attention_bias = true;
    c.qk_norm = false;
    c.max_position_embeddings = 32768;
  } else if (shape == "tiny") {
    // The real vocabulary, so the Qwen3 tokenizer works with it; everything else tiny.
    c.architecture = "Qwen3ForCausalLM";
    c.vocab_size = 151936;
    c.hidden_size = 64;
    c.intermediate_size = 128;
    c.num_layers = 2;
    c.num_heads = 4;
    c.num_kv_heads = 2;
    c.head_dim = 16;
    c.attention_bias = false;
    c.qk_norm = true;
    c.tie_word_embeddings = true;
    c.max_position_embeddings = 4096;
  } else if (fs::exists(shape)) {
    c = load_model_config(shape);
  } else {
    fail("unknown synthetic shape '{}' (expected tiny, 7b, 8b or a path to a config.json)", shape);
  }
  return c;
}

TensorStore make_random_weights(const ModelConfig& c, DType dtype, std::uint64_t seed) {
  TensorStore store;
  std::uint64_t tensor_seed = seed;
  const float half_width = 0.02f * std::sqrt(3.0f);
  auto random = [&](const std::string& name, std::vector<std::int64_t> shape) {
    std::uint8_t* data = store.add_owned(name, dtype, shape);
    std::size_t count = static_cast<std::size_t>(store.find(name)->numel());
    fill_uniform(data, dtype, count, half_width, splitmix64(tensor_seed));
  };
  auto ones = [&](const std::string& name, std::int64_t n) {
    fill_constant(store.add_owned(name, dtype, {n}), dtype, static_cast<std::size_t>(n), 1.0f);
  };
  const std::int64_t h = c.hidden_size;
  random("model.embed_tokens.weight", {c.vocab_size, h});
  for (std::int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    ones(p + "input_layernorm.weight", h);
    random(p + "self_attn.q_proj.weight", {c.q_size(), h});
    random(p + "self_attn.k_proj.weight", {c.kv_size(), h});
    random(p + "self_attn.v_proj.weight", {c.kv_size(), h});
    if (c.attention_bias) {
      random(p + "self_attn.q_proj.bias", {c.q_size()});
      random(p + "self_attn.k_proj.bias", {c.kv_size()});
      random(p + "self_attn.v_proj.bias", {c.kv_size()});
    }
    if (c.qk_norm) {
      ones(p + "self_attn.q_norm.weight", c.head_dim);
      ones(p + "self_attn.k_norm.weight", c.head_dim);
    }
    random(p + "self_attn.o_proj.weight", {h, c.q_size()});
    ones(p + "post_attention_layernorm.weight", h);
    random(p + "mlp.gate_proj.weight", {c.intermediate_size, h});
    random(p + "mlp.up_proj.weight", {c.intermediate_size, h});
    random(p + "mlp.down_proj.weight", {h, c.intermediate_size});
  }
  ones("model.norm.weight", h);
  if (!c.tie_word_embeddings) random("lm_head.weight", {c.vocab_size, h});
  return store;
}

void write_checkpoint(const std::string& dir, const ModelConfig& c, const TensorStore& store,
                      const std::string& tokenizer_dir) {
  fs::create_directories(dir);
  // Hugging Face's keys: ours, with the architecture as a list and the fields HF tools expect.
  json config = model_config_to_json(c);
  config.erase("architecture");
  config["architectures"] = {c.architecture.empty() ? "Qwen3ForCausalLM" : c.architecture};
  config["model_type"] = c.architecture == "Qwen2ForCausalLM" ? "qwen2" : "qwen3";
  config["rope_scaling"] = nullptr;
  config["hidden_act"] = "silu";
  auto write_json = [&](const std::string& name, const json& j) {
    std::ofstream out(fs::path(dir) / name);
    if (!out) fail("{}: cannot create {}", dir, name);
    out << j.dump(2) << "\n";
  };
  write_json("config.json", config);
  write_json("generation_config.json", json{{"eos_token_id", c.eos_token_ids}});
  std::vector<const TensorInfo*> tensors;
  for (const auto& [name, info] : store.tensors()) tensors.push_back(&info);
  write_safetensors((fs::path(dir) / "model.safetensors").string(), tensors);
  if (!tokenizer_dir.empty()) {
    for (const char* name : {"tokenizer.json", "tokenizer_config.json"}) {
      fs::path from = fs::path(tokenizer_dir) / name;
      if (!fs::exists(from)) fail("{}: {} is missing", tokenizer_dir, name);
      fs::copy_file(from, fs::path(dir) / name, fs::copy_options::overwrite_existing);
    }
  }
}

}  // namespace wedlm
