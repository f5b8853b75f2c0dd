#pragma once
// Token choice from one raw logits row, and the entropy the WeDLM window reads.
//
// Sampler::sample, exactly (so that another implementation reproduces the same tokens):
//  1. temperature == 0: argmax (lowest id among equal maxima); no random number is drawn.
//  2. Candidates are all ids ordered by (logit descending, id ascending).
//  3. top_k > 0: keep the first top_k candidates (all if top_k >= vocab).
//  4. top_p < 1: over the kept candidates, p_i = softmax of the raw logits (in double, max
//     subtracted, normalised over the kept set); keep the shortest prefix of the ordered
//     candidates whose running sum of p_i is >= top_p (at least one candidate; all if rounding
//     never reaches top_p).
//  5. Weights w_i = exp((l_i - l_max) / temperature) in double over the kept candidates.
//  6. One draw: u = (g() >> 11) * 2^-53 in [0, 1) with g = std::mt19937_64 seeded with the
//     request's seed (its output sequence is fixed by the C++ standard; the library's
//     uniform_real/discrete distributions are not, so they are not used). Walking the kept
//     candidates in ascending id order, the token is the first whose running sum of w_i is
//     > u * sum(w). Each sample() with temperature > 0 consumes exactly one g() output.
// A WeDLM step samples its mask rows in row order (= window order), one draw each.
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "wedlm/sampling.h"

namespace wedlm {

// Throws wedlm::Error for temperature < 0 (or not finite), top_k < 0, top_p outside (0, 1].
void validate(const SamplingParams& params);

// Index of the largest logit, the lowest index among equal maxima (NaN never wins). n >= 1.
int32_t argmax(const float* logits, size_t n);

// -sum p log p of softmax(logits), natural log, temperature not applied. Elementwise math is
// fp32 (max-subtracted); the two sums are accumulated in double so the result does not depend
// on summation order. Never negative (rounding is clamped), since the window compares it
// against thresholds as low as 0. n >= 1.
float entropy_of_logits(const float* logits, size_t n);

class Sampler {
 public:
  // Steps 1-5 of one row, everything but the draw: the kept candidates in ascending id order
  // with their weights and the weights' sum (in that order). Buffers are reused across calls.
  struct Prepared {
    int32_t greedy = -1;  // temperature 0: the token (no draw follows)
    std::vector<int32_t> ids;
    std::vector<double> weights;
    double total = 0.0;
    std::vector<uint32_t> keys, keys_scratch;  // the candidate sort's buffers
    std::vector<int32_t> ids_scratch;
    std::vector<uint8_t> is_kept;
  };

  explicit Sampler(const SamplingParams& params);  // validates

  // prepare() then draw(): the two halves of sample(). prepare() reads no generator state, so
  // the rows of a step can be prepared in parallel and then drawn in row order, as sample()
  // would have, with the same tokens.
  int32_t sample(const float* logits, size_t n);
  void prepare(const float* logits, size_t n, Prepared& out) const { prepare_row(params_, logits, n, out); }
  int32_t draw(const Prepared& prepared);  // step 6: one g() output unless greedy
  // Step 6's uniform u, the next g() output: a caller may take a step's uniforms ahead (one per
  // sampled row, in row order) and choose the tokens wherever the logits are.
  double next_uniform();
  // Steps 1-5 for `params` (its seed unused).
  static void prepare_row(const SamplingParams& params, const float* logits, size_t n, Prepared& out);
  // Step 6 with a given u.
  static int32_t choose(const Prepared& prepared, double uniform);
  const SamplingParams& params() const { return params_; }

 private:
  SamplingParams params_;
  std::mt19937_64 generator_;
  Prepared prepared_;  // sample()'s, reused: vocab-sized buffers
};

}  // namespace wedlm
