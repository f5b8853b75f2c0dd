#pragma once
// `wedlm bench --synthetic SHAPE --device cuda`: the GPU benchmark of issue 5 in one run.
#include <cstdint>
#include <string>
#include <vector>

namespace wedlm::cli {

struct GpuBenchOptions {
  std::string shape;
  std::vector<std::int32_t> rows;      // row counts of the timed forwards
  std::vector<std::int32_t> contexts;  // cached tokens before the timed forwards
  std::int32_t prefill_tokens = 2048;
  std::int32_t ar_tokens = 128;
  int repeats = 10;
};

void bench_synthetic_gpu(const GpuBenchOptions& options);

}  // namespace wedlm::cli
