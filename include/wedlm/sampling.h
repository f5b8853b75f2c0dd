#pragma once
// Per-request decoding parameters (public API). Checked by wedlm::validate() in src/decode.
#include <cstdint>

namespace wedlm {

// How one logits row becomes a token (DESIGN.md "Sampling of a row"): temperature 0 is greedy
// argmax; otherwise top-k, then top-p on the raw logits, then temperature, then one draw from
// the request's generator (std::mt19937_64 seeded with `seed`). src/decode/sampler.h pins down
// every detail so that another implementation can reproduce the draws.
struct SamplingParams {
  double temperature = 0.0;  // >= 0; 0 = greedy
  int32_t top_k = 0;         // >= 0; 0 = off
  double top_p = 1.0;        // in (0, 1]; 1 = off
  uint64_t seed = 0;
};

// WeDLM streaming parallel decoding (DESIGN.md "WeDLM streaming parallel decoding").
struct WedlmParams {
  int32_t window = 16;              // W >= 1: slots in the window (bounded by the KV space left)
  double entropy_threshold = 0.4;   // tau >= 0: fill masks whose adjusted entropy is < tau
  double position_penalty = 0.02;   // lambda >= 0: adjusted entropy A_j = H_j + lambda * d_j
};

// Why a sequence ended: a committed stop token (kept in the output), or a length limit
// (max_tokens or the KV space left for the sequence).
enum class FinishReason { none, stop, length };

inline const char* to_string(FinishReason reason) {
  switch (reason) {
    case FinishReason::stop: return "stop";
    case FinishReason::length: return "length";
    case FinishReason::none: break;
  }
  return "none";
}

}  // namespace wedlm
