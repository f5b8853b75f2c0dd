#pragma once
// One request's decoding state between forwards, shared by the single-sequence Engine and the
// BatchEngine: it turns the decoder's plan into forward rows and the forward's logits back into
// committed tokens. The KV cache of the sequence holds tokens()[0 .. kv_length()).
#include <cstdint>
#include <exception>
#include <optional>
#include <span>
#include <vector>

#include "decode/ar_decoder.h"
#include "decode/sampler.h"
#include "decode/window.h"
#include "model/transformer.h"
#include "wedlm/engine.h"

namespace wedlm {

// What the decoder reads of one logits row: its entropy and argmax always, the whole row only
// when the sequence samples (temperature > 0).
struct LogitRow {
  float entropy = 0;
  std::int32_t argmax = 0;
  const float* logits = nullptr;
};

// Rows [first, first + count) of a forward's output.
std::vector<LogitRow> logit_rows_of(const ForwardOutput& output, std::size_t first, std::size_t count,
                                    std::int64_t vocab);

// The rows of one decode step of one sequence.
struct StepRows {
  std::vector<std::int32_t> ids, positions, logit_rows;
  std::int64_t cache_start = 0;
};

class SequenceDecoder {
 public:
  // Validates the request against the model (prompt ids, context, parameters); throws wedlm::Error.
  SequenceDecoder(const GenerateRequest& request, const ModelInfo& model);

  DecodeMode mode() const { return mode_; }
  // Prompt + committed output.
  const std::vector<std::int32_t>& tokens() const { return tokens_; }
  std::int64_t prompt_length() const { return prompt_length_; }
  std::span<const std::int32_t> output() const;
  // Tokens whose K/V a (re)prefill must compute: all of tokens() for WeDLM; for AR all but the
  // last committed token, which the next step feeds.
  std::int64_t kv_length() const;
  // Whether the prefill's last row must produce logits (AR before its first token).
  bool needs_prefill_logits() const { return mode_ == DecodeMode::ar && output().empty(); }
  // Whether forwards must return whole logit rows for this sequence (it samples).
  bool wants_full_logits() const { return sampler_.params().temperature > 0; }
  // AR: the first token, from the prefill's last row.
  StepResult accept_prefill_logits(const LogitRow& row);

  // The next step's rows; `rows` is reused.
  void plan(StepRows& rows);
  // The planned logit rows, in order. Returns the committed tokens of the step.
  StepResult apply(std::span<const LogitRow> rows);
  // A sampled step's rows may be prepared before apply(), which then only draws: the candidates
  // and weights of a row take ~1-10 ms of host time and need no generator state, so a batch
  // prepares every sequence's rows in parallel. begin_prepare sizes the buffers for `rows` rows;
  // prepare_row may then run concurrently for distinct i (errors surface in apply()).
  void begin_prepare(std::size_t rows);
  void prepare_row(std::size_t i, const LogitRow& row);

  bool finished() const;
  FinishReason finish_reason() const;

 private:
  StepResult record(StepResult step);
  // The token of each row into chosen_: its argmax, or (sampling) a draw from its prepared
  // candidates, preparing them first unless begin_prepare/prepare_row did.
  void choose(std::span<const LogitRow> rows);

  DecodeMode mode_;
  std::int64_t vocab_;
  std::int64_t prompt_length_;
  std::vector<std::int32_t> tokens_;
  std::optional<WedlmWindow> window_;
  std::optional<ArDecoder> ar_;
  Sampler sampler_;
  std::vector<MaskRowResult> mask_results_;
  std::vector<std::int32_t> chosen_;  // a step's token per logit row
  std::vector<Sampler::Prepared> prepared_;  // one per logit row of a sampled step, reused
  std::vector<std::exception_ptr> prepare_errors_;
  std::size_t prepared_rows_ = 0;  // rows begin_prepare sized for; 0 once apply() used them
  std::size_t planned_logit_rows_ = 0;
};

}  // namespace wedlm
