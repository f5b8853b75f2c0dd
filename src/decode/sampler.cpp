#include "decode/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
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

namespace {

// Orders ids (0..n-1 in `out.ids`) by (logit descending, id ascending), as std::sort with that
// comparator would, by a stable LSD radix sort on a 32-bit key: 2-3 ms for a 152k vocabulary
// where the comparison sort took ~20 ms. The key maps floats to unsigned integers in descending
// order; -0.0 becomes +0.0 first, since the comparator holds them equal. No NaN reaches here.
void sort_by_logit(const float* logits, size_t n, Sampler::Prepared& out) {
  out.keys.resize(n);
  out.keys_scratch.resize(n);
  out.ids_scratch.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const float x = logits[i] + 0.0f;  // -0.0 -> +0.0
    uint32_t bits = 0;
    std::memcpy(&bits, &x, sizeof bits);
    bits = (bits & 0x80000000u) != 0 ? ~bits : bits | 0x80000000u;  // ascending with x
    out.keys[i] = ~bits;                                              // descending with x
    out.ids[i] = static_cast<int32_t>(i);
  }
  constexpr int kBits = 11, kBuckets = 1 << kBits;
  uint32_t* key = out.keys.data();
  uint32_t* key_to = out.keys_scratch.data();
  int32_t* id = out.ids.data();
  int32_t* id_to = out.ids_scratch.data();
  for (int shift = 0; shift < 32; shift += kBits) {
    size_t start[kBuckets + 1] = {};
    for (size_t i = 0; i < n; ++i) ++start[((key[i] >> shift) & (kBuckets - 1)) + 1];
    for (int b = 0; b < kBuckets; ++b) start[b + 1] += start[b];
    for (size_t i = 0; i < n; ++i) {
      const size_t at = start[(key[i] >> shift) & (kBuckets - 1)]++;
      key_to[at] = key[i];
      id_to[at] = id[i];
    }
    std::swap(key, key_to);
    std::swap(id, id_to);
  }
  // Three passes: the sorted ids are in the scratch buffer.
  if (id != out.ids.data()) std::copy_n(id, n, out.ids.data());
}

}  // namespace

int32_t Sampler::sample(const float* logits, size_t n) {
  prepare(logits, n, prepared_);
  return draw(prepared_);
}

void Sampler::prepare_row(const SamplingParams& params, const float* logits, size_t n, Prepared& out) {
  if (n == 0) throw std::invalid_argument("sampling from an empty row");
  out.greedy = -1;
  if (params.temperature == 0) {
    out.greedy = argmax(logits, n);
    return;
  }
  if (std::any_of(logits, logits + n, [](float l) { return std::isnan(l); }))
    fail("cannot sample: the logits row holds NaN");

  std::vector<int32_t>& candidates = out.ids;
  candidates.resize(n);
  std::iota(candidates.begin(), candidates.end(), 0);
  const auto before = [logits](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  auto first = candidates.begin();
  size_t kept = n;
  bool ordered = false;
  if (params.top_k > 0 && static_cast<size_t>(params.top_k) < n) {
    kept = static_cast<size_t>(params.top_k);
    std::partial_sort(first, first + kept, candidates.end(), before);
    ordered = true;
  }
  const double max_logit = logits[argmax(logits, n)];
  if (!std::isfinite(max_logit)) fail("cannot sample: the largest logit is {}", max_logit);
  if (params.top_p < 1) {
    if (!ordered) sort_by_logit(logits, n, out);
    ordered = true;
    double z = 0.0;
    for (size_t i = 0; i < kept; ++i) z += std::exp(double{logits[candidates[i]]} - max_logit);
    double mass = 0.0;
    for (size_t i = 0; i < kept; ++i) {
      mass += std::exp(double{logits[candidates[i]]} - max_logit) / z;
      if (mass >= params.top_p) {
        kept = i + 1;
        break;
      }
    }
  }
  // The draw walks the kept ids in ascending order (iota already is). Many kept ids (a top-p
  // set over the whole vocabulary) are put in order by marking them and scanning the ids.
  if (ordered && kept > n / 64) {
    out.is_kept.assign(n, 0);
    for (size_t i = 0; i < kept; ++i) out.is_kept[static_cast<size_t>(candidates[i])] = 1;
    size_t at = 0;
    for (size_t id = 0; id < n; ++id) {
      if (out.is_kept[id] != 0) candidates[at++] = static_cast<int32_t>(id);
    }
  } else if (ordered) {
    std::sort(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(kept));
  }
  candidates.resize(kept);
  out.weights.resize(kept);
  double total = 0.0;
  for (size_t i = 0; i < kept; ++i) {
    out.weights[i] = std::exp((double{logits[candidates[i]]} - max_logit) / params.temperature);
    total += out.weights[i];
  }
  out.total = total;
}

int32_t Sampler::draw(const Prepared& prepared) {
  if (prepared.greedy >= 0) return prepared.greedy;
  return choose(prepared, next_uniform());
}

int32_t Sampler::choose(const Prepared& prepared, double uniform) {
  if (prepared.greedy >= 0) return prepared.greedy;
  const double target = uniform * prepared.total;
  double running = 0.0;
  int32_t last_positive = prepared.ids[0];
  for (size_t i = 0; i < prepared.ids.size(); ++i) {
    const double w = prepared.weights[i];
    if (w <= 0) continue;
    running += w;
    last_positive = prepared.ids[i];
    if (running > target) return prepared.ids[i];
  }
  return last_positive;  // rounding left the running sum a hair under the target
}

}  // namespace wedlm
