#include "wedlm/engine.h"

#include <algorithm>
#include <numeric>

#include "engine/loaded_model.h"
#include "engine/sequence_decoder.h"
#include "util/error.h"
#include "util/timer.h"

namespace wedlm {

struct Engine::Impl {
  LoadedModel model;
  std::unique_ptr<KvCache> cache;
  explicit Impl(const EngineOptions& options)
      : model(options, 512), cache(model.transformer->make_kv_cache(model.info.context)) {}
};

Engine::Engine(const EngineOptions& options) : impl_(std::make_unique<Impl>(options)) {}

Engine::~Engine() = default;

const ModelInfo& Engine::info() const { return impl_->model.info; }

GenerateResult Engine::generate(const GenerateRequest& req, const TokenCallback& on_tokens) {
  SequenceDecoder seq(req, impl_->model.info);
  Transformer& transformer = *impl_->model.transformer;
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
  ForwardRequest prefill{req.prompt, positions, 0, last_row};
  prefill.full_logits = false;
  const std::vector<RowDraw> prefill_draws = seq.prefill_draws();
  prefill.draws = prefill_draws;
  ForwardOutput out;  // reused by every step (forward_rows keeps its storage)
  transformer.forward_rows(*impl_->cache, std::span<const ForwardRequest>(&prefill, 1), out);
  result.prefill_ms = prefill_clock.millis();

  Stopwatch decode_clock;
  bool stopped_by_caller = false;
  if (!last_row.empty()) stopped_by_caller = !deliver(seq.accept_prefill_logits(logit_rows_of(out, 0, 1)[0]));
  StepRows rows;
  while (!seq.finished() && !stopped_by_caller) {
    seq.plan(rows);
    std::vector<LogitRow> logit_rows;
    if (!rows.ids.empty()) {
      ForwardRequest step{rows.ids, rows.positions, rows.cache_start, rows.logit_rows};
      step.full_logits = false;
      step.draws = rows.draws;
      transformer.forward_rows(*impl_->cache, std::span<const ForwardRequest>(&step, 1), out);
      logit_rows = logit_rows_of(out, 0, rows.logit_rows.size());
    }
    ++result.forwards;
    stopped_by_caller = !deliver(seq.apply(logit_rows));
  }
  result.decode_ms = decode_clock.millis();
  result.output.assign(seq.output().begin(), seq.output().end());
  result.finish_reason = stopped_by_caller ? FinishReason::stop : seq.finish_reason();
  return result;
}

}  // namespace wedlm
