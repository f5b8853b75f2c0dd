#pragma once
// Random-weight models of a real shape: for benchmarks (built in memory) and for the demo
// checkpoint that set-up writes (`wedlm synth`).
#include <cstdint>
#include <string>

#include "model/config.h"
#include "model/tensor_store.h"

namespace wedlm {

// "tiny", "7b" (Qwen2.5-7B / WeDLM-7B shape), "8b" (Qwen3-8B / WeDLM-8B shape), or a path to a
// config.json.
ModelConfig synthetic_config(const std::string& shape);

// Every tensor the config needs, uniform random with std 0.02 (norm gains 1), deterministic in
// `seed`. Filled in parallel; weights in `dtype`, norm gains too.
TensorStore make_random_weights(const ModelConfig& config, DType dtype, std::uint64_t seed);

// Writes config.json, generation_config.json and model.safetensors into `dir` (created), and
// copies tokenizer.json / tokenizer_config.json from `tokenizer_dir` when it is not empty.
void write_checkpoint(const std::string& dir, const ModelConfig& config, const TensorStore& store,
                      const std::string& tokenizer_dir);

}  // namespace wedlm
