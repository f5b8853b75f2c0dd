#pragma once
// Optional per-op GPU timing (WEDLM_CUDA_PROFILE=1): CUDA events around every backend op,
// resolved at the next synchronizing call, summed per op name and printed to stderr when the
// backend is destroyed. Without the variable every call is a no-op.
#include <cuda_runtime.h>

#include <map>
#include <string>
#include <vector>

namespace wedlm::cuda {

class OpProfiler {
 public:
  OpProfiler();
  ~OpProfiler();
  OpProfiler(const OpProfiler&) = delete;
  OpProfiler& operator=(const OpProfiler&) = delete;

  bool enabled() const { return enabled_; }
  // Brackets the work enqueued on `stream` between begin and end.
  void begin(cudaStream_t stream);
  void end(const std::string& name, cudaStream_t stream);
  // Call after the stream was synchronized: reads the pending events.
  void collect();

 private:
  struct Pending {
    std::string name;
    cudaEvent_t start, stop;
  };
  struct Total {
    double ms = 0;
    long count = 0;
    double bytes = 0;
  };
  cudaEvent_t take();

  bool enabled_ = false;
  cudaEvent_t open_ = nullptr;
  std::vector<cudaEvent_t> pool_;
  std::vector<Pending> pending_;
  std::map<std::string, Total> totals_;
};

}  // namespace wedlm::cuda
