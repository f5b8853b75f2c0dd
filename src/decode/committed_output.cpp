#include "decode/committed_output.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "util/error.h"

namespace wedlm {

void validate(const DecodeLimits& limits) {
  if (limits.max_tokens < 1) fail("max_tokens must be >= 1, got {}", limits.max_tokens);
  if (limits.kv_space < 1)
    fail("no KV cache space left for the completion (kv_space {}); shorten the prompt", limits.kv_space);
}

CommittedOutput::CommittedOutput(DecodeLimits limits) : limits_(std::move(limits)) {
  validate(limits_);
}

FinishReason CommittedOutput::commit(int32_t token) {
  if (finished()) throw std::logic_error("CommittedOutput::commit after the sequence finished");
  tokens_.push_back(token);
  const auto& stops = limits_.stop_ids;
  if (std::find(stops.begin(), stops.end(), token) != stops.end()) {
    finish_ = FinishReason::stop;
  } else if (size() >= limits_.max_tokens || size() >= limits_.kv_space) {
    finish_ = FinishReason::length;
  }
  return finish_;
}

}  // namespace wedlm
