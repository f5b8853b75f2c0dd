#include "decode/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "util/error.h"

namespace wedlm {

void validate(const SamplingParams& params) {
  if (!std::isfinite(params.temperature) || params.temperature < 0)
    fail("temperature must be a number >= 0, got {}", params.temperature);
  if (params.top_k < 0) fail("top_k must be >= 0 (0 = off), got {}", params.top_k);
  if (!(params.top_p > 0 && params.top_p <= 1))
    fail("top_p must be in (0, 1] (1 = off), got {}", params.top_p);
}

int32_t argmax(const float* logits, size_t n) {
  if (n == 0) throw std::invalid_argument("argmax of an empty row");
  size_t best = 0;
  for (size_t i = 1; i < n; ++i) {
    // Strict '>' keeps the first maximum; a NaN at 0 is replaced by any number after it.
    if (logits[i] > logits[best] || std::isnan(logits[best])) best = i;
  }
  return static_cast<int32_t>(best);
}

float entropy_of_logits(const float* logits, size_t n) {
  if (n == 0) throw std::invalid_argument("entropy of an empty row");
  const float max = *std::max_element(logits, logits + n);
  if (!std::isfinite(max)) return 0.0f;  // all -inf (or +inf): no spread to measure
  // H = log Z - sum(e_i * x_i) / Z with x_i = l_i - max, e_i = exp(x_i), Z = sum e_i.
  double z = 0.0;
  double weighted = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const float x = logits[i] - max;
    const float e = std::exp(x);
    if (e == 0.0f) continue;  // also skips -inf logits, whose e * x would be NaN
    z += e;
    weighted += static_cast<double>(e) * x;
  }
  const double h = std::log(z) - weighted / z;
  return static_cast<float>(std::max(h, 0.0));
}

Sampler::Sampler(const SamplingParams& params) : params_(params), generator_(params.seed) {
  validate(params_);
}

double Sampler::next_uniform() {
  return static_cast<double>(generator_() >> 11) * 0x1.0p-53;
}

int32_t Sampler::sample(const float* logits, size_t n) {
  if (n == 0) throw std::invalid_argument("sampling from an empty row");
  if (params_.temperature == 0) return argmax(logits, n);
  if (std::any_of(logits, logits + n, [](float l) { return std::isnan(l); }))
    fail("cannot sample: the logits row holds NaN");

  candidates_.resize(n);
  std::iota(candidates_.begin(), candidates_.end(), 0);
  const auto before = [logits](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  auto first = candidates_.begin();
  size_t kept = n;
  bool ordered = false;
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < n) {
    kept = static_cast<size_t>(params_.top_k);
    std::partial_sort(first, first + kept, candidates_.end(), before);
    ordered = true;
  }
  const double max_logit = logits[argmax(logits, n)];
  if (!std::isfinite(max_logit)) fail("cannot sample: the largest logit is {}", max_logit);
  if (params_.top_p < 1) {
    if (!ordered) std::sort(first, first + kept, before);
    double z = 0.0;
    for (size_t i = 0; i < kept; ++i) z += std::exp(double{logits[candidates_[i]]} - max_logit);
    double mass = 0.0;
    for (size_t i = 0; i < kept; ++i) {
      mass += std::exp(double{logits[candidates_[i]]} - max_logit) / z;
      if (mass >= params_.top_p) {
        kept = i + 1;
        break;
      }
    }
  }
  std::sort(first, first + kept);  // the draw walks ascending ids
  double total = 0.0;
  for (size_t i = 0; i < kept; ++i)
    total += std::exp((double{logits[candidates_[i]]} - max_logit) / params_.temperature);
  const double target = next_uniform() * total;
  double running = 0.0;
  int32_t last_positive = candidates_[0];
  for (size_t i = 0; i < kept; ++i) {
    const double w = std::exp((double{logits[candidates_[i]]} - max_logit) / params_.temperature);
    if (w <= 0) continue;
    running += w;
    last_positive = candidates_[i];
    if (running > target) return candidates_[i];
  }
  return last_positive;  // rounding left the running sum a hair under the target
}

}  // namespace wedlm
