#include "wedlm/engine.h"

#include <algorithm>
#include <numeric>

#include "backend/backend.h"
#include "decode/ar_decoder.h"
#include "decode/sampler.h"
#include "decode/window.h"
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

  GenerateResult run_wedlm(const GenerateRequest& req, DecodeLimits limits, const TokenCallback& on_tokens);
  GenerateResult run_ar(const GenerateRequest& req, DecodeLimits limits, const TokenCallback& on_tokens);
  // Prefills the prompt at cache slots 0..L-1; returns the logits of `logit_rows`.
  std::vector<float> prefill(const std::vector<std::int32_t>& prompt, std::span<const std::int32_t> logit_rows,
                             GenerateResult& result);
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

std::vector<float> Engine::Impl::prefill(const std::vector<std::int32_t>& prompt,
                                         std::span<const std::int32_t> logit_rows, GenerateResult& result) {
  Stopwatch clock;
  std::vector<std::int32_t> positions(prompt.size());
  std::iota(positions.begin(), positions.end(), 0);
  std::vector<float> logits = transformer->forward(*cache, {prompt, positions, 0, logit_rows});
  result.prefill_ms = clock.millis();
  return logits;
}

GenerateResult Engine::Impl::run_wedlm(const GenerateRequest& req, DecodeLimits limits,
                                       const TokenCallback& on_tokens) {
  if (info.mask_token_id < 0) {
    fail("this model has no mask token inside its vocabulary (config.json mask_token_id); use --mode ar");
  }
  GenerateResult result;
  WedlmWindow window(req.wedlm, static_cast<std::int32_t>(info.mask_token_id), std::move(limits));
  Sampler sampler(req.sampling);
  prefill(req.prompt, {}, result);  // the prompt's logits are not used

  Stopwatch clock;
  const std::int64_t vocab = info.vocab_size;
  std::vector<std::int32_t> ids, positions, logit_rows;
  std::vector<MaskRowResult> mask_results;
  while (!window.finished()) {
    const std::int64_t committed_len = static_cast<std::int64_t>(req.prompt.size() + window.committed().size());
    StepPlan plan = window.plan();
    ids.clear();
    positions.clear();
    logit_rows.clear();
    for (std::size_t k = 0; k < plan.rows.size(); ++k) {
      ids.push_back(plan.rows[k].token);
      positions.push_back(static_cast<std::int32_t>(committed_len + plan.rows[k].window_index));
      if (static_cast<std::int32_t>(k) >= plan.first_mask_row) logit_rows.push_back(static_cast<std::int32_t>(k));
    }
    std::vector<float> logits;
    if (!ids.empty()) logits = transformer->forward(*cache, {ids, positions, committed_len, logit_rows});
    ++result.forwards;
    mask_results.clear();
    for (std::size_t j = 0; j < logit_rows.size(); ++j) {
      const float* row = logits.data() + static_cast<std::int64_t>(j) * vocab;
      mask_results.push_back({entropy_of_logits(row, static_cast<std::size_t>(vocab)),
                              sampler.sample(row, static_cast<std::size_t>(vocab))});
    }
    StepResult step = window.apply(mask_results);
    if (!step.committed.empty() && on_tokens && !on_tokens(step.committed) && !window.finished()) {
      result.output = window.committed();
      result.finish_reason = FinishReason::stop;
      result.decode_ms = clock.millis();
      return result;
    }
  }
  result.output = window.committed();
  result.finish_reason = window.finish_reason();
  result.decode_ms = clock.millis();
  return result;
}

GenerateResult Engine::Impl::run_ar(const GenerateRequest& req, DecodeLimits limits, const TokenCallback& on_tokens) {
  GenerateResult result;
  ArDecoder decoder(std::move(limits));
  Sampler sampler(req.sampling);
  const std::int32_t last = static_cast<std::int32_t>(req.prompt.size() - 1);
  std::vector<float> logits = prefill(req.prompt, std::span<const std::int32_t>(&last, 1), result);
  Stopwatch clock;
  const std::size_t vocab = static_cast<std::size_t>(info.vocab_size);
  const std::int32_t zero = 0;
  while (true) {
    StepResult step = decoder.accept(sampler.sample(logits.data(), vocab));
    if (on_tokens && !on_tokens(step.committed) && !decoder.finished()) {
      result.finish_reason = FinishReason::stop;
      break;
    }
    if (decoder.finished()) {
      result.finish_reason = decoder.finish_reason();
      break;
    }
    // Feed the committed token back: it takes the next cache slot and position.
    const std::int32_t position = static_cast<std::int32_t>(req.prompt.size() + decoder.committed().size() - 1);
    const std::int32_t token = step.committed.back();
    logits = transformer->forward(*cache, {std::span<const std::int32_t>(&token, 1),
                                           std::span<const std::int32_t>(&position, 1), position,
                                           std::span<const std::int32_t>(&zero, 1)});
    ++result.forwards;
  }
  result.output = decoder.committed();
  result.decode_ms = clock.millis();
  return result;
}

GenerateResult Engine::generate(const GenerateRequest& req, const TokenCallback& on_tokens) {
  const ModelInfo& info = impl_->info;
  if (req.prompt.empty()) fail("the prompt is empty");
  for (std::int32_t id : req.prompt) {
    if (id < 0 || id >= info.vocab_size) fail("prompt token id {} is outside the vocabulary (size {})", id, info.vocab_size);
  }
  const std::int64_t prompt_len = static_cast<std::int64_t>(req.prompt.size());
  if (prompt_len >= info.context) {
    fail("the prompt has {} tokens but the context holds {} (prompt + output); raise --context or shorten the prompt",
         prompt_len, info.context);
  }
  DecodeLimits limits;
  limits.max_tokens = req.max_tokens;
  limits.kv_space = info.context - prompt_len;
  limits.stop_ids = req.stop_ids;
  if (!req.ignore_eos) {
    for (std::int64_t id : info.eos_token_ids) limits.stop_ids.push_back(static_cast<std::int32_t>(id));
  }
  validate(limits);
  validate(req.sampling);
  if (req.mode == DecodeMode::wedlm) validate(req.wedlm);
  GenerateResult result = req.mode == DecodeMode::wedlm ? impl_->run_wedlm(req, std::move(limits), on_tokens)
                                                        : impl_->run_ar(req, std::move(limits), on_tokens);
  result.prompt_tokens = prompt_len;
  return result;
}

}  // namespace wedlm
