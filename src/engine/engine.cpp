#include "wedlm/engine.h"

#include <algorithm>
#include <numeric>

#include "backend/backend.h"
#include "engine/sequence_decoder.h"
#include "model/checkpoint.h"
#include "model/transformer.h"
#include "util/error.h"
#include "util/timer.h"

namespace wedlm {

struct Engine::Impl {
  std::unique_ptr<Checkpoint> checkpoint;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Transformer> transformer;
  std::unique_ptr<KvCache> cache;
  ModelInfo info;
};

Engine::Engine(const EngineOptions& options) : impl_(std::make_unique<Impl>()) {
  if (options.context <= 0) fail("--context must be positive, got {}", options.context);
  impl_->checkpoint = open_checkpoint(options.model);
  if (options.show_progress) impl_->checkpoint->prefetch(true);
  impl_->backend = make_backend(parse_device(options.device));
  impl_->transformer = std::make_unique<Transformer>(*impl_->checkpoint, *impl_->backend);
  const ModelConfig& c = impl_->checkpoint->config;
  const std::int64_t context = std::min(options.context, c.max_position_embeddings);
  impl_->cache = impl_->transformer->make_kv_cache(context);
  impl_->info = {impl_->checkpoint->dir, c.vocab_size, c.mask_token_id, c.eos_token_ids, context};
}

Engine::~Engine() = default;

const ModelInfo& Engine::info() const { return impl_->info; }

GenerateResult Engine::generate(const GenerateRequest& req, const TokenCallback& on_tokens) {
  SequenceDecoder seq(req, impl_->info);
  Transformer& transformer = *impl_->transformer;
  GenerateResult result;
  result.prompt_tokens = seq.prompt_length();
  // Tells the caller; false from the caller ends the sequence as a stop.
  auto deliver = [&](const StepResult& step) {
    return step.committed.empty() || !on_tokens || on_tokens(step.committed) || seq.finished();
  };

  Stopwatch prefill_clock;
  std::vector<std::int32_t> positions(req.prompt.size());
  std::iota(positions.begin(), positions.end(), 0);
  std::vector<std::int32_t> last_row;
  if (seq.needs_prefill_logits()) last_row.push_back(static_cast<std::int32_t>(req.prompt.size() - 1));
  std::vector<float> logits = transformer.forward(*impl_->cache, {req.prompt, positions, 0, last_row});
  result.prefill_ms = prefill_clock.millis();

  Stopwatch decode_clock;
  bool stopped_by_caller = false;
  if (!last_row.empty()) stopped_by_caller = !deliver(seq.accept_prefill_logits(logits.data()));
  StepRows rows;
  while (!seq.finished() && !stopped_by_caller) {
    seq.plan(rows);
    logits.clear();
    if (!rows.ids.empty()) {
      logits = transformer.forward(*impl_->cache, {rows.ids, rows.positions, rows.cache_start, rows.logit_rows});
    }
    ++result.forwards;
    stopped_by_caller = !deliver(seq.apply(logits.data()));
  }
  result.decode_ms = decode_clock.millis();
  result.output.assign(seq.output().begin(), seq.output().end());
  result.finish_reason = stopped_by_caller ? FinishReason::stop : seq.finish_reason();
  return result;
}

}  // namespace wedlm
