#pragma once
// A loaded checkpoint: resolved directory, validated config, and every tensor the transformer
// needs, bound by role and checked for presence, shape and dtype.
#include <memory>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/tensor_store.h"

namespace wedlm {

struct LayerTensors {
  const TensorInfo* attn_norm = nullptr;
  const TensorInfo* q_proj = nullptr;
  const TensorInfo* k_proj = nullptr;
  const TensorInfo* v_proj = nullptr;
  const TensorInfo* q_bias = nullptr;  // attention_bias only
  const TensorInfo* k_bias = nullptr;
  const TensorInfo* v_bias = nullptr;
  const TensorInfo* q_norm = nullptr;  // qk_norm only
  const TensorInfo* k_norm = nullptr;
  const TensorInfo* o_proj = nullptr;
  const TensorInfo* mlp_norm = nullptr;
  const TensorInfo* gate_proj = nullptr;
  const TensorInfo* up_proj = nullptr;
  const TensorInfo* down_proj = nullptr;
};

struct ModelTensors {
  const TensorInfo* embed = nullptr;
  std::vector<LayerTensors> layers;
  const TensorInfo* final_norm = nullptr;
  const TensorInfo* lm_head = nullptr;  // the embedding when tied
};

// Binds and validates; `source` (directory) names the checkpoint in errors.
ModelTensors bind_model_tensors(const ModelConfig& config, const TensorStore& store, const std::string& source);

struct Checkpoint {
  std::string dir;
  ModelConfig config;
  TensorStore store;
  ModelTensors tensors;

  std::size_t weight_bytes() const;  // bytes of the tensors the model uses
  // Reads every page of the bound tensors once so the first forward does not pay for page
  // faults; shows progress on a terminal and prints the load time when `report` is set.
  void prefetch(bool report) const;
};

// Resolves a directory path or a Hugging Face id ("tencent/WeDLM-8B-Instruct") in the local HF
// cache. Throws with download instructions when neither exists.
std::string resolve_model_dir(const std::string& model);

// Opens, parses config + generation config, maps tensors and validates them.
std::unique_ptr<Checkpoint> open_checkpoint(const std::string& model);
// Same validation for tensors built in memory.
std::unique_ptr<Checkpoint> make_checkpoint(std::string name, ModelConfig config, TensorStore store);

}  // namespace wedlm
