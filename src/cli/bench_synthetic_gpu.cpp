#include "cli/bench_synthetic_gpu.h"

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <random>

#include "backend/backend.h"
#include "model/synthetic.h"
#include "model/transformer.h"
#include "util/error.h"
#include "util/timer.h"
#ifdef WEDLM_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace wedlm::cli {

#ifdef WEDLM_HAVE_CUDA

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// FLOPs of a prefill of `tokens` rows with logits for one row: every linear layer's weights
// once per row (2 FLOPs per weight), causal attention (QK^T and PV over tokens^2 / 2 pairs), and
// one lm_head row. The embedding lookup is not arithmetic.
double prefill_flops(const ModelConfig& c, double tokens) {
  const double linear = static_cast<double>(c.hidden_size) * (c.q_size() + 2 * c.kv_size()) +
                        static_cast<double>(c.q_size()) * c.hidden_size +
                        3.0 * static_cast<double>(c.hidden_size) * c.intermediate_size;
  const double attention = 2.0 * 2.0 * tokens * tokens / 2.0 * static_cast<double>(c.head_dim) * c.num_heads;
  return c.num_layers * (2.0 * linear * tokens + attention) + 2.0 * static_cast<double>(c.vocab_size) * c.hidden_size;
}

}  // namespace

void bench_synthetic_gpu(const GpuBenchOptions& o) {
  auto backend = make_backend(DeviceKind::Cuda);
  std::printf("device: %s\n", backend->name().c_str());
  const cuda::CopyBandwidth bw = cuda::measure_copy_bandwidth();
  std::printf("copy bandwidth (measured, device to device, bytes read + written): %.0f GB/s\n", bw.gbps);

  Stopwatch build_clock;
  ModelConfig config = synthetic_config(o.shape);
  auto ck = make_checkpoint("synthetic-" + o.shape, config, make_random_weights(config, DType::BF16, 1));
  const double weight_gb = static_cast<double>(ck->weight_bytes()) / 1e9;
  const double built_s = build_clock.seconds();
  const std::int32_t max_rows = std::max(*std::max_element(o.rows.begin(), o.rows.end()), o.prefill_tokens);
  Stopwatch upload_clock;
  Transformer transformer(*ck, *backend, max_rows);
  std::printf("model: synthetic %s, %.3f B parameters, %.3f GB bf16 weights (built in %.1f s, uploaded in %.1f s)\n",
              o.shape.c_str(), static_cast<double>(config.parameter_count()) / 1e9, weight_gb, built_s,
              upload_clock.seconds());
  const double roofline_ms = weight_gb / bw.gbps * 1e3;
  std::printf("roofline per forward (weight bytes / copy bandwidth): %.2f ms\n", roofline_ms);

  const std::int32_t max_context = *std::max_element(o.contexts.begin(), o.contexts.end());
  const std::int64_t capacity = std::max<std::int64_t>(max_context + max_rows + o.ar_tokens, o.prefill_tokens);
  if (capacity > config.max_position_embeddings) fail("contexts are too long for this model");
  auto cache = transformer.make_kv_cache(capacity);
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::int32_t> token(0, static_cast<std::int32_t>(config.vocab_size - 1));
  auto random_ids = [&](std::int64_t n) {
    std::vector<std::int32_t> ids(static_cast<std::size_t>(n));
    for (auto& id : ids) id = token(rng);
    return ids;
  };
  auto iota_from = [](std::int64_t n, std::int32_t first) {
    std::vector<std::int32_t> v(static_cast<std::size_t>(n));
    std::iota(v.begin(), v.end(), first);
    return v;
  };

  // Prefill: one pass of prefill_tokens rows (logits of the last row only).
  {
    const auto ids = random_ids(o.prefill_tokens);
    const auto positions = iota_from(o.prefill_tokens, 0);
    const std::vector<std::int32_t> last = {o.prefill_tokens - 1};
    transformer.forward(*cache, {ids, positions, 0, last});  // warm-up: GEMM plans
    std::vector<double> times;
    for (int i = 0; i < std::max(3, o.repeats / 3); ++i) {
      Stopwatch clock;
      transformer.forward(*cache, {ids, positions, 0, last});
      times.push_back(clock.seconds());
    }
    const double s = median(times);
    std::printf("prefill: %d tokens in %.1f ms = %.0f tokens/s, %.0f TFLOP/s (%.1f TFLOP counted: linear layers, "
                "causal attention, one lm_head row)\n",
                o.prefill_tokens, s * 1e3, o.prefill_tokens / s, prefill_flops(config, o.prefill_tokens) / s / 1e12,
                prefill_flops(config, o.prefill_tokens) / 1e12);
  }

  std::printf("\nforward latency (median of %d): every row summarised on the GPU (entropy + argmax, what a greedy\n"
              "WeDLM step reads) | every row also sampled on the GPU (temperature 0.7, top-p 0.95; only ids come back)\n",
              o.repeats);
  std::printf("%8s %6s %12s %12s %14s %12s\n", "context", "rows", "ms", "x roofline", "ms sampled", "x roofline");
  for (std::int32_t context : o.contexts) {
    // Fill the cache up to `context` (chunks of max_rows).
    for (std::int32_t at = 0; at < context; at += max_rows) {
      const std::int32_t n = std::min(max_rows, context - at);
      transformer.forward(*cache, {random_ids(n), iota_from(n, at), at, {}});
    }
    for (std::int32_t rows : o.rows) {
      const auto ids = random_ids(rows);
      const auto positions = iota_from(rows, context);
      const auto all = iota_from(rows, 0);
      std::vector<RowDraw> draws;
      for (std::int32_t r = 0; r < rows; ++r) draws.push_back({0.7, 0, 0.95, std::uniform_real_distribution<double>()(rng)});
      double ms[2];
      for (int variant = 0; variant < 2; ++variant) {
        ForwardRequest request{ids, positions, context, all};
        request.full_logits = false;
        if (variant == 1) request.draws = draws;
        const std::span<const ForwardRequest> batch(&request, 1);
        ForwardOutput output;  // reused, as a decode loop does
        transformer.forward_rows(*cache, batch, output);  // warm-up
        std::vector<double> times;
        for (int i = 0; i < o.repeats; ++i) {
          Stopwatch clock;
          transformer.forward_rows(*cache, batch, output);
          times.push_back(clock.millis());
        }
        ms[variant] = median(times);
      }
      std::printf("%8d %6d %12.2f %12.2f %14.2f %12.2f\n", context, rows, ms[0], ms[0] / roofline_ms, ms[1],
                  ms[1] / roofline_ms);
    }
  }

  // AR decode: greedy, one row per forward, from the first context on.
  {
    const std::int32_t start = o.contexts.front();
    std::int32_t next = token(rng);
    const std::int32_t zero = 0;
    Stopwatch clock;
    for (std::int32_t i = 0; i < o.ar_tokens; ++i) {
      const std::int32_t position = start + i;
      ForwardRequest request{std::span<const std::int32_t>(&next, 1), std::span<const std::int32_t>(&position, 1),
                             position, std::span<const std::int32_t>(&zero, 1)};
      request.full_logits = false;
      next = transformer.forward_rows(*cache, std::span<const ForwardRequest>(&request, 1)).argmax[0];
    }
    const double s = clock.seconds();
    std::printf("\nAR decode (greedy, GPU argmax, from context %d): %d tokens in %.1f ms = %.1f tokens/s "
                "(%.2f ms/token, %.2fx roofline)\n",
                start, o.ar_tokens, s * 1e3, o.ar_tokens / s, s * 1e3 / o.ar_tokens, s * 1e3 / o.ar_tokens / roofline_ms);
  }
}

#else

void bench_synthetic_gpu(const GpuBenchOptions&) {
  fail("this build has no CUDA backend (configure with -DWEDLM_CUDA=ON where nvcc exists)");
}

#endif

}  // namespace wedlm::cli
