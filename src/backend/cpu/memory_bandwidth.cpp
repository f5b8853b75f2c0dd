#include "backend/cpu/memory_bandwidth.h"

#include "backend/cpu/simd.h"
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "util/timer.h"

namespace wedlm::cpu {

namespace {

float read_all(const float* data, std::size_t count) {
  float total = 0.0f;
#pragma omp parallel reduction(+ : total)
  {
    const std::size_t t = static_cast<std::size_t>(omp_get_thread_num());
    const std::size_t nt = static_cast<std::size_t>(omp_get_num_threads());
    const std::size_t begin = count * t / nt / 64 * 64, end = t + 1 == nt ? count : count * (t + 1) / nt / 64 * 64;
#if defined(__AVX512F__)
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    std::size_t i = begin;
    for (; i + 64 <= end; i += 64) {
      a0 = _mm512_add_ps(a0, _mm512_loadu_ps(data + i));
      a1 = _mm512_add_ps(a1, _mm512_loadu_ps(data + i + 16));
      a2 = _mm512_add_ps(a2, _mm512_loadu_ps(data + i + 32));
      a3 = _mm512_add_ps(a3, _mm512_loadu_ps(data + i + 48));
    }
    float local = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    for (; i < end; ++i) local += data[i];
#else
    float local = 0.0f;
    for (std::size_t i = begin; i < end; ++i) local += data[i];
#endif
    total += local;
  }
  return total;
}

}  // namespace

BandwidthResult measure_memory_bandwidth(std::size_t bytes, int passes) {
  const std::size_t count = bytes / sizeof(float);
  std::unique_ptr<float[]> src(new float[count]), dst(new float[count]);
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
