// The CPU matmul on the shapes of one WeDLM-8B layer: weights streamed in bf16, 1..512 rows.
// Reports FLOP/s and weight bytes/s.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "backend/cpu/matmul.h"

namespace {

void BM_MatmulBf16(benchmark::State& state) {
  const std::int64_t rows = state.range(0), n = state.range(1), k = state.range(2);
  // Several weight copies, cycled, so that the weights come from memory, not the caches.
  const std::int64_t copies = std::max<std::int64_t>(1, (std::int64_t{256} << 20) / (n * k * 2));
  std::vector<std::uint16_t> w(static_cast<std::size_t>(copies * n * k));
  std::mt19937 rng(1);
  for (auto& v : w) v = wedlm::float_to_bf16(std::uniform_real_distribution<float>(-1, 1)(rng));
  std::vector<float> x(static_cast<std::size_t>(rows * k), 0.5f), out(static_cast<std::size_t>(rows * n));
  wedlm::cpu::MatmulArgs a;
  a.x = x.data();
  a.x_stride = k;
  a.w_dtype = wedlm::DType::BF16;
  a.out = out.data();
  a.out_stride = n;
  a.rows = rows;
  a.n = n;
  a.k = k;
  std::int64_t i = 0;
  for (auto _ : state) {
    a.w = w.data() + (i++ % copies) * n * k;
    wedlm::cpu::matmul(a);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(rows * n * k) * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
  state.counters["weight_GB/s"] =
      benchmark::Counter(2.0 * static_cast<double>(n * k) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// gate_up of WeDLM-8B: [24576 x 4096].
BENCHMARK(BM_MatmulBf16)->Args({1, 24576, 4096})->Args({16, 24576, 4096})->Args({32, 24576, 4096})
    ->Args({512, 24576, 4096})->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
