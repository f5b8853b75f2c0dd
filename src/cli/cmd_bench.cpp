// `wedlm bench --synthetic SHAPE`: forward latency of a random-weight model of a real shape,
// against the memory bandwidth measured in the same run.
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <random>

#include "backend/backend.h"
#include "backend/cpu/memory_bandwidth.h"
#include "cli/bench_synthetic_gpu.h"
#include "cli/commands.h"
#include "cli/generation_options.h"
#include "cli/parse.h"
#include "model/synthetic.h"
#include "model/transformer.h"
#include "util/error.h"
#include "util/timer.h"
#include "wedlm/engine.h"

namespace wedlm::cli {

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

namespace {

struct BenchFlags {
  std::string synthetic, device = "cpu", rows_text = "1,16,32", contexts_text = "512,4096";
  int prefill_tokens = 2048, ar_tokens = 128;
  int context = 512, repeats = 3;
  // End-to-end generation on a checkpoint directory.
  std::string model, prompt = "Write a short story about a robot who learns to paint.", prompt_ids, mode = "both";
  std::int32_t max_tokens = 128;
  std::int64_t generation_context = 4096;
};

void bench_synthetic(const BenchFlags& f);

// WeDLM and AR greedy generation of the same prompt in one run, with the speed-up.
void bench_generation(const BenchFlags& f) {
  Engine engine(EngineOptions{f.model, f.device, f.generation_context, true});
  GenerateRequest request;
  if (!f.prompt_ids.empty()) {
    request.prompt = parse_id_list(f.prompt_ids, "--prompt-ids");
  } else {
    std::optional<Tokenizer> tokenizer = load_tokenizer(engine.info().directory, "");
    if (!tokenizer) fail("{} has no tokenizer.json; pass --prompt-ids", engine.info().directory);
    request.prompt = tokenizer->encode(f.prompt);
  }
  request.max_tokens = f.max_tokens;
  request.ignore_eos = true;  // equal lengths make the two modes comparable
  std::printf("model: %s, device %s, prompt %zu tokens, %d tokens generated per run (greedy, eos ignored)\n",
              engine.info().directory.c_str(), f.device.c_str(), request.prompt.size(), f.max_tokens);
  std::printf("%-6s %10s %16s %14s %12s %12s\n", "mode", "forwards", "tokens/forward", "decode tok/s", "decode ms",
              "prefill ms");
  double wedlm_tps = 0, ar_tps = 0;
  for (DecodeMode mode : {DecodeMode::wedlm, DecodeMode::ar}) {
    if ((mode == DecodeMode::wedlm && f.mode == "ar") || (mode == DecodeMode::ar && f.mode == "wedlm")) continue;
    request.mode = mode;
    GenerateResult r = engine.generate(request);
    const double tps = 1e3 * static_cast<double>(r.output.size()) / r.decode_ms;
    (mode == DecodeMode::wedlm ? wedlm_tps : ar_tps) = tps;
    std::printf("%-6s %10lld %16.2f %14.2f %12.1f %12.1f\n", mode == DecodeMode::wedlm ? "wedlm" : "ar",
                static_cast<long long>(r.forwards), r.tokens_per_forward(), tps, r.decode_ms, r.prefill_ms);
  }
  if (wedlm_tps > 0 && ar_tps > 0) std::printf("speed-up of WeDLM over AR: %.2fx\n", wedlm_tps / ar_tps);
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Benchmark forward passes (--synthetic) or generation (--model)");
  static BenchFlags flags;
  auto* synthetic = cmd->add_option("--synthetic", flags.synthetic, "Random weights of a real shape: tiny, 7b, 8b");
  auto* model = cmd->add_option("-m,--model", flags.model, "Checkpoint: time WeDLM and AR generation");
  synthetic->excludes(model);
  cmd->add_option("--device", flags.device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_option("--context", flags.context, "Tokens in the KV cache before the measured forwards (--synthetic)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--rows", flags.rows_text, "Row counts of the measured forwards (--synthetic)");
  cmd->add_option("--contexts", flags.contexts_text, "Cached tokens before the timed forwards (--synthetic, cuda)");
  cmd->add_option("--prefill", flags.prefill_tokens, "Prompt tokens of the timed prefill (--synthetic, cuda)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--ar-tokens", flags.ar_tokens, "Tokens of the timed AR decode (--synthetic, cuda)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--repeats", flags.repeats, "Timed forwards per row count, median reported")->check(CLI::Range(1, 1000));
  cmd->add_option("--mode", flags.mode, "wedlm, ar or both (--model)")->check(CLI::IsMember({"wedlm", "ar", "both"}));
  cmd->add_option("--prompt", flags.prompt, "Prompt text (--model)");
  cmd->add_option("--prompt-ids", flags.prompt_ids, "Prompt token ids (--model)");
  cmd->add_option("--max-tokens", flags.max_tokens, "Tokens generated per run (--model)")->check(CLI::PositiveNumber);
  cmd->callback([] {
    if (flags.synthetic.empty() == flags.model.empty()) fail("give exactly one of --synthetic and --model");
    if (flags.model.empty()) bench_synthetic(flags); else bench_generation(flags);
  });
}

namespace {

void bench_synthetic(const BenchFlags& f) {
  if (f.device == "cuda") {
    GpuBenchOptions o;
    o.shape = f.synthetic;
    o.rows = parse_id_list(f.rows_text, "--rows");
    o.contexts = parse_id_list(f.contexts_text, "--contexts");
    for (std::int32_t v : o.rows) {
      if (v <= 0) fail("--rows: row counts must be positive, got {}", v);
    }
    for (std::int32_t v : o.contexts) {
      if (v <= 0) fail("--contexts: contexts must be positive, got {}", v);
    }
    o.prefill_tokens = f.prefill_tokens;
    o.ar_tokens = f.ar_tokens;
    o.repeats = f.repeats;
    bench_synthetic_gpu(o);
    return;
  }
  const std::string& synthetic = f.synthetic;
  const std::string& device = f.device;
  const int context = f.context, repeats = f.repeats;
    std::vector<std::int32_t> row_counts = parse_id_list(f.rows_text, "--rows");
    for (std::int32_t r : row_counts) {
      if (r <= 0) fail("--rows: row counts must be positive, got {}", r);
    }
    auto backend = make_backend(parse_device(device));
    std::printf("device: %s, %d threads\n", backend->name().c_str(), omp_get_max_threads());

    cpu::BandwidthResult bw = cpu::measure_memory_bandwidth();
    std::printf("memory bandwidth (measured): read %.2f GB/s, copy %.2f GB/s (read+write)\n", bw.read_gbps,
                bw.copy_gbps);

    Stopwatch build_clock;
    ModelConfig config = synthetic_config(synthetic);
    auto ck = make_checkpoint("synthetic-" + synthetic, config, make_random_weights(config, DType::BF16, 1));
    const double weight_gb = static_cast<double>(ck->weight_bytes()) / 1e9;
    std::printf("model: synthetic %s, %.3f B parameters, %.3f GB bf16 weights (built in %.1f s)\n", synthetic.c_str(),
                static_cast<double>(config.parameter_count()) / 1e9, weight_gb, build_clock.seconds());
    const double roofline_ms = weight_gb / bw.read_gbps * 1e3;
    std::printf("roofline per forward (weight bytes / read bandwidth): %.1f ms\n", roofline_ms);

    const std::int32_t max_rows = *std::max_element(row_counts.begin(), row_counts.end());
    Transformer transformer(*ck, *backend, std::max<std::int64_t>(512, max_rows));
    if (context + max_rows > config.max_position_embeddings) fail("--context {} is too long for this model", context);
    auto cache = transformer.make_kv_cache(context + max_rows);
    std::mt19937 rng(7);
    std::uniform_int_distribution<std::int32_t> token(0, static_cast<std::int32_t>(config.vocab_size - 1));
    std::vector<std::int32_t> ids(static_cast<std::size_t>(context)), positions(ids.size());
    for (auto& id : ids) id = token(rng);
    std::iota(positions.begin(), positions.end(), 0);
    std::vector<std::int32_t> last_row = {context - 1};
    Stopwatch prefill_clock;
    transformer.forward(*cache, {ids, positions, 0, last_row});
    const double prefill_s = prefill_clock.seconds();
    const double prefill_flops = 2.0 * static_cast<double>(config.parameter_count()) * context;
    std::printf("prefill: %d tokens in %.2f s = %.1f tokens/s (%.1f GFLOP/s)\n", context, prefill_s,
                context / prefill_s, prefill_flops / prefill_s / 1e9);

    std::printf("\n%6s %12s %12s %14s %12s\n", "rows", "latency ms", "x roofline", "weights GB/s", "% of read bw");
    for (std::int32_t rows : row_counts) {
      std::vector<std::int32_t> step_ids(static_cast<std::size_t>(rows)), step_pos(step_ids.size()), logit_rows(step_ids.size());
      for (auto& id : step_ids) id = token(rng);
      std::iota(step_pos.begin(), step_pos.end(), context);
      std::iota(logit_rows.begin(), logit_rows.end(), 0);
      transformer.forward(*cache, {step_ids, step_pos, context, logit_rows});  // warm-up
      std::vector<double> times;
      for (int i = 0; i < repeats; ++i) {
        Stopwatch clock;
        transformer.forward(*cache, {step_ids, step_pos, context, logit_rows});
        times.push_back(clock.millis());
      }
      const double ms = median(times);
      const double gbps = weight_gb / (ms / 1e3);
      std::printf("%6d %12.1f %12.2f %14.2f %11.1f%%\n", rows, ms, ms / roofline_ms, gbps, 100.0 * gbps / bw.read_gbps);
    }
}

}  // namespace

}  // namespace wedlm::cli
