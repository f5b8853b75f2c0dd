#include "backend/cuda/op_profiler.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "backend/cuda/cuda_check.h"

namespace wedlm::cuda {

OpProfiler::OpProfiler() {
  const char* env = std::getenv("WEDLM_CUDA_PROFILE");
  enabled_ = env != nullptr && *env != '\0' && *env != '0';
}

OpProfiler::~OpProfiler() {
  if (!enabled_) return;
  cudaDeviceSynchronize();
  collect();
  std::vector<std::pair<std::string, Total>> rows(totals_.begin(), totals_.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
  double all = 0;
  for (const auto& r : rows) all += r.second.ms;
  std::fprintf(stderr, "\nGPU time per op (WEDLM_CUDA_PROFILE), %.1f ms in all\n%-44s %10s %8s %10s\n", all, "op",
               "total ms", "calls", "us/call");
  for (const auto& [name, t] : rows) {
    std::fprintf(stderr, "%-44s %10.2f %8ld %10.1f\n", name.c_str(), t.ms, t.count, 1e3 * t.ms / static_cast<double>(t.count));
  }
  for (cudaEvent_t e : pool_) cudaEventDestroy(e);
}

cudaEvent_t OpProfiler::take() {
  if (!pool_.empty()) {
    cudaEvent_t e = pool_.back();
    pool_.pop_back();
    return e;
  }
  cudaEvent_t e;
  WEDLM_CUDA_CHECK(cudaEventCreate(&e));
  return e;
}

void OpProfiler::begin(cudaStream_t stream) {
  if (!enabled_) return;
  open_ = take();
  WEDLM_CUDA_CHECK(cudaEventRecord(open_, stream));
}

void OpProfiler::end(const std::string& name, cudaStream_t stream) {
  if (!enabled_) return;
  cudaEvent_t stop = take();
  WEDLM_CUDA_CHECK(cudaEventRecord(stop, stream));
  pending_.push_back({name, open_, stop});
}

void OpProfiler::collect() {
  if (!enabled_) return;
  for (const Pending& p : pending_) {
    float ms = 0;
    WEDLM_CUDA_CHECK(cudaEventElapsedTime(&ms, p.start, p.stop));
    Total& t = totals_[p.name];
    t.ms += ms;
    ++t.count;
    pool_.push_back(p.start);
    pool_.push_back(p.stop);
  }
  pending_.clear();
}

}  // namespace wedlm::cuda
