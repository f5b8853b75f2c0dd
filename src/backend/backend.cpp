#include "backend/backend.h"

#include <exception>
#include <stdexcept>
#include <vector>

#include "decode/sampler.h"

#include "backend/cpu/cpu_backend.h"
#ifdef WEDLM_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif
#include "util/error.h"

namespace wedlm {

void sample_rows_on_host(const float* rows, std::int64_t count, std::int64_t cols, std::int64_t stride,
                         std::span<const RowDraw> draws, std::int32_t* tokens) {
  if (static_cast<std::int64_t>(draws.size()) != count) throw std::logic_error("sample_logits: one draw per row");
  // A row's candidates and weights take ~1-10 ms of host time: the rows in parallel.
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(count));
#pragma omp parallel for schedule(dynamic) if (count > 1)
  for (std::int64_t r = 0; r < count; ++r) {
    const RowDraw& d = draws[static_cast<std::size_t>(r)];
    try {
      if (!(d.temperature > 0)) throw std::logic_error("sample_logits: a row with temperature 0");
      thread_local Sampler::Prepared prepared;  // vocab-sized buffers, reused
      Sampler::prepare_row(SamplingParams{d.temperature, d.top_k, d.top_p, 0}, rows + r * stride,
                           static_cast<std::size_t>(cols), prepared);
      tokens[r] = Sampler::choose(prepared, d.uniform);
    } catch (...) {
      errors[static_cast<std::size_t>(r)] = std::current_exception();
    }
  }
  for (const std::exception_ptr& e : errors) {
    if (e) std::rethrow_exception(e);  // the first failing row's
  }
}

void Backend::sample_logits(DeviceMatrix logits, std::span<const RowDraw> draws, std::int32_t* tokens) {
  std::vector<float> host(static_cast<std::size_t>(logits.rows * logits.cols));
  download(logits, host.data());
  sample_rows_on_host(host.data(), logits.rows, logits.cols, logits.cols, draws, tokens);
}

DeviceKind parse_device(const std::string& name) {
  if (name == "cpu") return DeviceKind::Cpu;
  if (name == "cuda") return DeviceKind::Cuda;
  fail("unknown device '{}' (expected cpu or cuda)", name);
}

std::unique_ptr<Backend> make_backend(DeviceKind kind) {
  switch (kind) {
    case DeviceKind::Cpu: return make_cpu_backend();
    case DeviceKind::Cuda:
#ifdef WEDLM_HAVE_CUDA
      return make_cuda_backend();
#else
      fail("this build has no CUDA backend (configure with -DWEDLM_CUDA=ON where nvcc exists); use --device cpu");
#endif
  }
  fail("unknown device");
}

}  // namespace wedlm
