#include "engine/loaded_model.h"

#include <algorithm>

#include "util/error.h"

namespace wedlm {

LoadedModel::LoadedModel(const EngineOptions& options, std::int64_t max_rows) {
  if (options.context <= 0) fail("--context must be positive, got {}", options.context);
  checkpoint = open_checkpoint(options.model);
  if (options.show_progress) checkpoint->prefetch(true);
  backend = make_backend(parse_device(options.device));
  transformer = std::make_unique<Transformer>(*checkpoint, *backend, max_rows);
  const ModelConfig& c = checkpoint->config;
  info = {checkpoint->dir, c.vocab_size, c.mask_token_id, c.eos_token_ids,
          std::min(options.context, c.max_position_embeddings)};
}

}  // namespace wedlm
