#pragma once
// A checkpoint opened on a backend, with the model facts callers need; shared by Engine and
// BatchEngine.
#include <memory>

#include "backend/backend.h"
#include "model/checkpoint.h"
#include "model/transformer.h"
#include "wedlm/engine.h"

namespace wedlm {

struct LoadedModel {
  std::unique_ptr<Checkpoint> checkpoint;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Transformer> transformer;
  ModelInfo info;  // info.context: KV slots per sequence, capped by the model

  LoadedModel(const EngineOptions& options, std::int64_t max_rows);
};

}  // namespace wedlm
