#include "engine/loaded_model.h"

#include <algorithm>

#include "model/synthetic.h"
#include "util/error.h"

namespace wedlm {

namespace {

// "synthetic:8b" (or tiny, 7b, a config.json path): random bf16 weights of a real shape built in
// memory, for benchmarking a server or the engine without a checkpoint on disk.
std::unique_ptr<Checkpoint> open_model(const std::string& model) {
  constexpr std::string_view kSynthetic = "synthetic:";
  if (!model.starts_with(kSynthetic)) return open_checkpoint(model);
  ModelConfig config = synthetic_config(model.substr(kSynthetic.size()));
  return make_checkpoint(model, config, make_random_weights(config, DType::BF16, 1));
}

}  // namespace

LoadedModel::LoadedModel(const EngineOptions& options, std::int64_t max_rows) {
  if (options.context <= 0) fail("--context must be positive, got {}", options.context);
  checkpoint = open_model(options.model);
  if (options.show_progress) checkpoint->prefetch(true);
  backend = make_backend(parse_device(options.device));
  transformer = std::make_unique<Transformer>(*checkpoint, *backend, max_rows);
  const ModelConfig& c = checkpoint->config;
  info = {checkpoint->dir, c.vocab_size, c.mask_token_id, c.eos_token_ids,
          std::min(options.context, c.max_position_embeddings)};
}

}  // namespace wedlm
