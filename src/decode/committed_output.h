#pragma once
// The committed output of one sequence and the limits that end it. Shared by the WeDLM window
// and the AR decoder so that stop tokens, max_tokens and the KV space end both the same way.
#include <cstdint>
#include <vector>

#include "wedlm/sampling.h"

namespace wedlm {

struct DecodeLimits {
  int32_t max_tokens = 0;          // >= 1: completion tokens at most
  std::vector<int32_t> stop_ids;   // committing any of these ends the sequence (token kept)
  // Cache slots this sequence may fill after its prompt (>= 1). Committed output never exceeds
  // it; WeDLM also never plans more rows than the slots left (see window.h).
  int64_t kv_space = 0;
};

// Throws wedlm::Error for max_tokens < 1 or kv_space < 1.
void validate(const DecodeLimits& limits);

class CommittedOutput {
 public:
  explicit CommittedOutput(DecodeLimits limits);  // validates

  // Appends one token and returns why the sequence ends with it (none if it goes on). A stop
  // token wins over a length limit reached by the same token. Throws std::logic_error once
  // finished.
  FinishReason commit(int32_t token);

  const std::vector<int32_t>& tokens() const { return tokens_; }
  int64_t size() const { return static_cast<int64_t>(tokens_.size()); }
  bool finished() const { return finish_ != FinishReason::none; }
  FinishReason finish_reason() const { return finish_; }
  // Cache slots still free for this sequence: kv_space - committed.
  int64_t kv_slots_left() const { return limits_.kv_space - size(); }
  const DecodeLimits& limits() const { return limits_; }

 private:
  DecodeLimits limits_;
  std::vector<int32_t> tokens_;
  FinishReason finish_ = FinishReason::none;
};

// What one decoding step produced: the tokens committed by it, in order, and whether the
// sequence ended with them.
struct StepResult {
  std::vector<int32_t> committed;
  FinishReason finish = FinishReason::none;
};

}  // namespace wedlm
