#include "backend/cpu/memory_bandwidth.h"

#include "backend/cpu/simd.h"
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "util/timer.h"

namespace wedlm::cpu {

namespace {

// Each thread reads its share as several concurrent streams, the way a matmul reads several
// weight rows at once: one sequential stream per core leaves the memory system underused and
// would understate the bandwidth available to the kernels.
float read_all(const float* data, std::size_t count) {
  constexpr std::size_t kStreams = 4;
  float total = 0.0f;
#pragma omp parallel reduction(+ : total)
  {
    const std::size_t t = static_cast<std::size_t>(omp_get_thread_num());
    const std::size_t nt = static_cast<std::size_t>(omp_get_num_threads());
    const std::size_t share = count / nt / (kStreams * 16) * (kStreams * 16);
    [[maybe_unused]] const std::size_t stream_len = share / kStreams;  // AVX-512 path only
    const float* base = data + t * share;
    float local = 0.0f;
#if defined(__AVX512F__)
    __m512 acc[kStreams];
    for (auto& a : acc) a = _mm512_setzero_ps();
    for (std::size_t i = 0; i < stream_len; i += 16) {
      for (std::size_t s = 0; s < kStreams; ++s) acc[s] = _mm512_add_ps(acc[s], _mm512_loadu_ps(base + s * stream_len + i));
    }
    for (auto& a : acc) local += _mm512_reduce_add_ps(a);
#else
    for (std::size_t i = 0; i < share; ++i) local += base[i];
#endif
    total += local;
  }
  return total;
}

}  // namespace

BandwidthResult measure_memory_bandwidth(std::size_t bytes, int passes) {
  const std::size_t count = bytes / sizeof(float);
  // Cache-line aligned: unaligned 64-byte loads straddle two lines and would halve the figure.
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float[], Free> src(static_cast<float*>(std::aligned_alloc(64, count * sizeof(float)))),
      dst(static_cast<float*>(std::aligned_alloc(64, count * sizeof(float))));
#pragma omp parallel for
  for (std::size_t i = 0; i < count; ++i) {
    src[i] = static_cast<float>(i & 1023);
    dst[i] = 0.0f;
  }
  BandwidthResult result;
  volatile float sink = 0.0f;
  for (int p = 0; p < passes; ++p) {
    Stopwatch clock;
    sink = sink + read_all(src.get(), count);
    // read_all covers all but a remainder under 1 KiB per thread.
    result.read_gbps = std::max(result.read_gbps, static_cast<double>(bytes) / clock.seconds() / 1e9);
  }
  for (int p = 0; p < passes; ++p) {
    Stopwatch clock;
#pragma omp parallel
    {
      const std::size_t t = static_cast<std::size_t>(omp_get_thread_num());
      const std::size_t nt = static_cast<std::size_t>(omp_get_num_threads());
      const std::size_t begin = count * t / nt, end = count * (t + 1) / nt;
      std::memcpy(dst.get() + begin, src.get() + begin, (end - begin) * sizeof(float));
    }
    result.copy_gbps = std::max(result.copy_gbps, 2.0 * static_cast<double>(bytes) / clock.seconds() / 1e9);
  }
  return result;
}

}  // namespace wedlm::cpu
