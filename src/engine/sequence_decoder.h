#pragma once
// One request's decoding state between forwards, shared by the single-sequence Engine and the
// BatchEngine: it turns the decoder's plan into forward rows and the forward's logits back into
// committed tokens. The KV cache of the sequence holds tokens()[0 .. kv_length()).
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "decode/ar_decoder.h"
#include "decode/sampler.h"
#include "decode/window.h"
#include "model/transformer.h"
#include "wedlm/engine.h"

namespace wedlm {

// What the decoder reads of one logits row: its entropy, and its token (the argmax, or the draw
// when the sequence samples), both computed where the logits are.
struct LogitRow {
  float entropy = 0;
  std::int32_t token = 0;
};

// Rows [first, first + count) of a forward's output.
std::vector<LogitRow> logit_rows_of(const ForwardOutput& output, std::size_t first, std::size_t count);

// The rows of one decode step of one sequence.
struct StepRows {
  std::vector<std::int32_t> ids, positions, logit_rows;
  std::vector<RowDraw> draws;  // one per logit row when the sequence samples, else empty
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
  // The draws of the prefill's logit row (see needs_prefill_logits), empty when greedy. Takes a
  // uniform from the request's generator: call once, right before that forward.
  std::vector<RowDraw> prefill_draws();
  // AR: the first token, from the prefill's last row.
  StepResult accept_prefill_logits(const LogitRow& row);

  // The next step's rows; `rows` is reused. A sampling sequence's draws take their uniforms from
  // the request's generator, one per logit row in row order (decode/sampler.h): the tokens are
  // those of sampling the rows one after another.
  void plan(StepRows& rows);
  // The planned logit rows, in order. Returns the committed tokens of the step.
  StepResult apply(std::span<const LogitRow> rows);

  bool finished() const;
  FinishReason finish_reason() const;

 private:
  StepResult record(StepResult step);
  void add_draws(std::size_t rows, std::vector<RowDraw>& draws);

  DecodeMode mode_;
  std::int64_t prompt_length_;
  std::vector<std::int32_t> tokens_;
  std::optional<WedlmWindow> window_;
  std::optional<ArDecoder> ar_;
  Sampler sampler_;
  std::vector<MaskRowResult> mask_results_;
  std::size_t planned_logit_rows_ = 0;
};

}  // namespace wedlm
