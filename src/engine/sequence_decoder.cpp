#include "engine/sequence_decoder.h"

#include <stdexcept>

#include "util/error.h"

namespace wedlm {

namespace {

DecodeLimits limits_for(const GenerateRequest& req, const ModelInfo& model) {
  if (req.prompt.empty()) fail("the prompt is empty");
  for (std::int32_t id : req.prompt) {
    if (id < 0 || id >= model.vocab_size) {
      fail("prompt token id {} is outside the vocabulary (size {})", id, model.vocab_size);
    }
  }
  const std::int64_t prompt_len = static_cast<std::int64_t>(req.prompt.size());
  if (prompt_len >= model.context) {
    fail("the prompt has {} tokens but the context holds {} (prompt + output); raise --context or shorten the prompt",
         prompt_len, model.context);
  }
  DecodeLimits limits;
  limits.max_tokens = req.max_tokens;
  limits.kv_space = model.context - prompt_len;
  limits.stop_ids = req.stop_ids;
  if (!req.ignore_eos) {
    for (std::int64_t id : model.eos_token_ids) limits.stop_ids.push_back(static_cast<std::int32_t>(id));
  }
  validate(limits);
  return limits;
}

}  // namespace

SequenceDecoder::SequenceDecoder(const GenerateRequest& req, const ModelInfo& model)
    : mode_(req.mode),
      prompt_length_(static_cast<std::int64_t>(req.prompt.size())),
      tokens_(req.prompt),
      sampler_(req.sampling) {
  DecodeLimits limits = limits_for(req, model);
  if (mode_ == DecodeMode::wedlm) {
    if (model.mask_token_id < 0) {
      fail("this model has no mask token inside its vocabulary (config.json mask_token_id); use --mode ar");
    }
    window_.emplace(req.wedlm, static_cast<std::int32_t>(model.mask_token_id), std::move(limits));
  } else {
    ar_.emplace(std::move(limits));
  }
}

std::span<const std::int32_t> SequenceDecoder::output() const {
  return std::span<const std::int32_t>(tokens_).subspan(static_cast<std::size_t>(prompt_length_));
}

std::int64_t SequenceDecoder::kv_length() const {
  const std::int64_t n = static_cast<std::int64_t>(tokens_.size());
  return mode_ == DecodeMode::ar && !output().empty() ? n - 1 : n;
}

bool SequenceDecoder::finished() const { return window_ ? window_->finished() : ar_->finished(); }

FinishReason SequenceDecoder::finish_reason() const {
  return window_ ? window_->finish_reason() : ar_->finish_reason();
}

StepResult SequenceDecoder::record(StepResult step) {
  tokens_.insert(tokens_.end(), step.committed.begin(), step.committed.end());
  return step;
}

std::vector<LogitRow> logit_rows_of(const ForwardOutput& output, std::size_t first, std::size_t count) {
  std::vector<LogitRow> rows;
  for (std::size_t i = first; i < first + count; ++i) rows.push_back({output.entropy[i], output.token[i]});
  return rows;
}

void SequenceDecoder::add_draws(std::size_t rows, std::vector<RowDraw>& draws) {
  const SamplingParams& p = sampler_.params();
  if (p.temperature == 0) return;
  for (std::size_t i = 0; i < rows; ++i) draws.push_back({p.temperature, p.top_k, p.top_p, sampler_.next_uniform()});
}

std::vector<RowDraw> SequenceDecoder::prefill_draws() {
  std::vector<RowDraw> draws;
  if (needs_prefill_logits()) add_draws(1, draws);
  return draws;
}

StepResult SequenceDecoder::accept_prefill_logits(const LogitRow& row) { return record(ar_->accept(row.token)); }

void SequenceDecoder::plan(StepRows& rows) {
  rows.ids.clear();
  rows.positions.clear();
  rows.logit_rows.clear();
  rows.draws.clear();
  if (ar_) {
    // Feed the last committed token: it takes the next cache slot and position.
    const std::int64_t slot = static_cast<std::int64_t>(tokens_.size()) - 1;
    rows.ids.push_back(tokens_.back());
    rows.positions.push_back(static_cast<std::int32_t>(slot));
    rows.logit_rows.push_back(0);
    rows.cache_start = slot;
  } else {
    const std::int64_t committed_len = static_cast<std::int64_t>(tokens_.size());
    StepPlan plan = window_->plan();
    for (std::size_t k = 0; k < plan.rows.size(); ++k) {
      rows.ids.push_back(plan.rows[k].token);
      rows.positions.push_back(static_cast<std::int32_t>(committed_len + plan.rows[k].window_index));
      if (static_cast<std::int32_t>(k) >= plan.first_mask_row) rows.logit_rows.push_back(static_cast<std::int32_t>(k));
    }
    rows.cache_start = committed_len;
  }
  planned_logit_rows_ = rows.logit_rows.size();
  add_draws(rows.logit_rows.size(), rows.draws);
}

StepResult SequenceDecoder::apply(std::span<const LogitRow> rows) {
  if (rows.size() != planned_logit_rows_) {
    throw std::logic_error("SequenceDecoder::apply: results for a different number of rows than planned");
  }
  if (ar_) return record(ar_->accept(rows.front().token));
  mask_results_.clear();
  for (const LogitRow& row : rows) mask_results_.push_back({row.entropy, row.token});
  return record(window_->apply(mask_results_));
}

}  // namespace wedlm
