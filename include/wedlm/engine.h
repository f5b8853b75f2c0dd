#pragma once
// The library's front door: load a model once, then generate from token ids with WeDLM
// streaming parallel decoding or token by token. Committed tokens stream to a callback as soon
// as they are committed.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "wedlm/error.h"
#include "wedlm/sampling.h"

namespace wedlm {

enum class DecodeMode { wedlm, ar };

struct EngineOptions {
  std::string model;           // model directory, Hugging Face id, or synthetic:8b|7b|tiny (random weights)
  std::string device = "cpu";  // cpu | cuda
  std::int64_t context = 4096; // KV cache slots per sequence (prompt + output); capped by the model
  bool show_progress = false;  // loading progress and time on stderr
};

struct GenerateRequest {
  std::vector<std::int32_t> prompt;
  DecodeMode mode = DecodeMode::wedlm;
  WedlmParams wedlm;
  SamplingParams sampling;
  std::int32_t max_tokens = 256;
  std::vector<std::int32_t> stop_ids;  // added to the model's eos ids
  bool ignore_eos = false;             // do not stop at the model's eos ids
};

struct GenerateResult {
  std::vector<std::int32_t> output;  // completion tokens (a stop token is kept)
  FinishReason finish_reason = FinishReason::none;
  std::int64_t prompt_tokens = 0;
  std::int64_t forwards = 0;  // decode forwards; the prefill is not counted
  double prefill_ms = 0;
  double decode_ms = 0;
  double tokens_per_forward() const {
    return forwards ? static_cast<double>(output.size()) / static_cast<double>(forwards) : 0.0;
  }
  double decode_tokens_per_s() const { return decode_ms > 0 ? 1e3 * static_cast<double>(output.size()) / decode_ms : 0.0; }
};

// Called with the tokens committed by each step. Returning false ends the sequence (the caller
// found a stop string); the result's finish_reason is then `stop`.
using TokenCallback = std::function<bool(std::span<const std::int32_t> committed)>;

struct ModelInfo {
  std::string directory;
  std::int64_t vocab_size = 0;
  std::int64_t mask_token_id = -1;  // -1: the model has none (AR only)
  std::vector<std::int64_t> eos_token_ids;
  std::int64_t context = 0;  // effective KV slots per sequence
};

class Engine {
 public:
  explicit Engine(const EngineOptions& options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const ModelInfo& info() const;
  // Throws wedlm::Error for bad parameters or a prompt that does not fit the context.
  GenerateResult generate(const GenerateRequest& request, const TokenCallback& on_tokens = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace wedlm
