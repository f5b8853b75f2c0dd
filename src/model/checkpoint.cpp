#include "model/checkpoint.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "util/error.h"
#include "util/progress.h"

namespace wedlm {

namespace fs = std::filesystem;

namespace {

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

const TensorInfo* bind(const TensorStore& store, const std::string& source, const std::string& name,
                       std::vector<std::int64_t> shape) {
  const TensorInfo* t = store.find(name);
  if (t == nullptr) fail("{}: tensor '{}' is missing", source, name);
  if (t->shape != shape) {
    fail("{}: tensor '{}' in {} has shape {} but the config needs {}", source, name, t->file, shape_text(t->shape),
         shape_text(shape));
  }
  if (!t->dtype) {
    fail("{}: tensor '{}' in {} has dtype {}; only F32, F16 and BF16 are supported", source, name, t->file,
         t->dtype_name);
  }
  return t;
}

}  // namespace

ModelTensors bind_model_tensors(const ModelConfig& c, const TensorStore& store, const std::string& source) {
  ModelTensors m;
  const std::int64_t h = c.hidden_size;
  m.embed = bind(store, source, "model.embed_tokens.weight", {c.vocab_size, h});
  for (std::int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    LayerTensors l;
    l.attn_norm = bind(store, source, p + "input_layernorm.weight", {h});
    l.q_proj = bind(store, source, p + "self_attn.q_proj.weight", {c.q_size(), h});
    l.k_proj = bind(store, source, p + "self_attn.k_proj.weight", {c.kv_size(), h});
    l.v_proj = bind(store, source, p + "self_attn.v_proj.weight", {c.kv_size(), h});
    if (c.attention_bias) {
      l.q_bias = bind(store, source, p + "self_attn.q_proj.bias", {c.q_size()});
      l.k_bias = bind(store, source, p + "self_attn.k_proj.bias", {c.kv_size()});
      l.v_bias = bind(store, source, p + "self_attn.v_proj.bias", {c.kv_size()});
    }
    if (c.qk_norm) {
      l.q_norm = bind(store, source, p + "self_attn.q_norm.weight", {c.head_dim});
      l.k_norm = bind(store, source, p + "self_attn.k_norm.weight", {c.head_dim});
    }
    l.o_proj = bind(store, source, p + "self_attn.o_proj.weight", {h, c.q_size()});
    l.mlp_norm = bind(store, source, p + "post_attention_layernorm.weight", {h});
    l.gate_proj = bind(store, source, p + "mlp.gate_proj.weight", {c.intermediate_size, h});
    l.up_proj = bind(store, source, p + "mlp.up_proj.weight", {c.intermediate_size, h});
    l.down_proj = bind(store, source, p + "mlp.down_proj.weight", {h, c.intermediate_size});
    m.layers.push_back(l);
  }
  m.final_norm = bind(store, source, "model.norm.weight", {h});
  if (c.tie_word_embeddings) {
    m.lm_head = m.embed;
  } else {
    m.lm_head = bind(store, source, "lm_head.weight", {c.vocab_size, h});
  }
  return m;
}

std::size_t Checkpoint::weight_bytes() const {
  std::size_t total = tensors.embed->bytes + tensors.final_norm->bytes;
  if (tensors.lm_head != tensors.embed) total += tensors.lm_head->bytes;
  for (const LayerTensors& l : tensors.layers) {
    for (const TensorInfo* t : {l.attn_norm, l.q_proj, l.k_proj, l.v_proj, l.q_bias, l.k_bias, l.v_bias, l.q_norm,
                                l.k_norm, l.o_proj, l.mlp_norm, l.gate_proj, l.up_proj, l.down_proj}) {
      if (t != nullptr) total += t->bytes;
    }
  }
  return total;
}

void Checkpoint::prefetch(bool report) const {
  Progress progress("loading " + dir, store.tensors().size(), store.total_bytes());
  volatile std::uint8_t sink = 0;
  for (const auto& [name, info] : store.tensors()) {
    for (std::size_t offset = 0; offset < info.bytes; offset += 4096) sink = sink + info.data[offset];
    progress.advance(1, info.bytes);
  }
  progress.finish(report);
}

std::string resolve_model_dir(const std::string& model) {
  if (model.empty()) fail("--model is empty");
  if (fs::is_directory(model)) return model;
  if (fs::exists(model)) fail("{}: is a file; --model takes a model directory or a Hugging Face id", model);
  // A Hugging Face id is ORG/NAME (exactly one slash, no leading dot or slash).
  auto slash = model.find('/');
  bool looks_like_id = slash != std::string::npos && slash > 0 && model.find('/', slash + 1) == std::string::npos &&
                       model[0] != '.' && slash + 1 < model.size();
  if (!looks_like_id) fail("{}: no such model directory", model);

  fs::path hub;
  if (const char* v = std::getenv("HF_HUB_CACHE"); v && *v) {
    hub = v;
  } else if (const char* v = std::getenv("HF_HOME"); v && *v) {
    hub = fs::path(v) / "hub";
  } else if (const char* v = std::getenv("HOME"); v && *v) {
    hub = fs::path(v) / ".cache" / "huggingface" / "hub";
  }
  std::string folder = "models--" + model.substr(0, slash) + "--" + model.substr(slash + 1);
  fs::path repo = hub / folder;
  fs::path snapshots = repo / "snapshots";
  if (!hub.empty() && fs::is_directory(snapshots)) {
    // Prefer the revision refs/main points at; otherwise the newest snapshot.
    std::ifstream ref(repo / "refs" / "main");
    std::string revision;
    if (ref && std::getline(ref, revision) && fs::is_directory(snapshots / revision)) {
      return (snapshots / revision).string();
    }
    fs::path newest;
    fs::file_time_type newest_time{};
    for (const auto& entry : fs::directory_iterator(snapshots)) {
      if (entry.is_directory() && (newest.empty() || entry.last_write_time() > newest_time)) {
        newest = entry.path();
        newest_time = entry.last_write_time();
      }
    }
    if (!newest.empty()) return newest.string();
  }
  fail("model '{}' is not a directory and is not in the Hugging Face cache ({}). Download it with:\n"
       "  huggingface-cli download {}\n"
       "(or `hf download {}`), or pass --model /path/to/model-directory",
       model, hub.empty() ? std::string("no cache folder: HOME is unset") : repo.string(), model, model);
}

std::unique_ptr<Checkpoint> open_checkpoint(const std::string& model) {
  std::string dir = resolve_model_dir(model);
  fs::path config_path = fs::path(dir) / "config.json";
  if (!fs::exists(config_path)) fail("{}: config.json is missing", dir);
  ModelConfig config = load_model_config(config_path.string());
  merge_generation_config(config, (fs::path(dir) / "generation_config.json").string());
  return make_checkpoint(dir, std::move(config), TensorStore::open_directory(dir));
}

std::unique_ptr<Checkpoint> make_checkpoint(std::string name, ModelConfig config, TensorStore store) {
  auto ck = std::make_unique<Checkpoint>();
  ck->dir = std::move(name);
  ck->config = std::move(config);
  ck->store = std::move(store);
  ck->tensors = bind_model_tensors(ck->config, ck->store, ck->dir);
  return ck;
}

}  // namespace wedlm
