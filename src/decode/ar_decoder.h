#pragma once
// Token-by-token decoding of one sequence: the last row's logits (the prefill's for the first
// token) give the next token, which is committed at once. Counting (DESIGN.md): the first
// token comes from the prefill, so n tokens cost n - 1 forwards.
//
// KV space: output stops at kv_space tokens ("length"), the same bound as WeDLM, although the
// last token would not need a cache slot until it is fed back.
#include <cstdint>
#include <utility>
#include <vector>

#include "decode/committed_output.h"

namespace wedlm {

class ArDecoder {
 public:
  explicit ArDecoder(DecodeLimits limits) : output_(std::move(limits)) {}

  // Commits the token sampled from the last row. Throws std::logic_error once finished.
  StepResult accept(int32_t token) {
    StepResult result;
    result.committed.push_back(token);
    result.finish = output_.commit(token);
    return result;
  }

  bool finished() const { return output_.finished(); }
  FinishReason finish_reason() const { return output_.finish_reason(); }
  const std::vector<int32_t>& committed() const { return output_.tokens(); }

 private:
  CommittedOutput output_;
};

}  // namespace wedlm
