#include "backend/cpu/matmul.h"

#include "backend/cpu/parallel.h"
#include "backend/cpu/simd.h"
#include <omp.h>

#include <algorithm>

namespace wedlm::cpu {

namespace {

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)

constexpr int kLanes = 16;

// Loads 16 weights as fp32; `mask` selects the valid lanes of a tail.
template <DType D>
inline __m512 load_weights(const void* base, std::int64_t index, __mmask16 mask) {
  if constexpr (D == DType::F32) {
    return _mm512_maskz_loadu_ps(mask, static_cast<const float*>(base) + index);
  } else {
    __m256i half = _mm256_maskz_loadu_epi16(mask, static_cast<const std::uint16_t*>(base) + index);
    if constexpr (D == DType::BF16) {
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(half), 16));
    } else {
      return _mm512_cvtph_ps(half);
    }
  }
}

template <DType D>
inline __m512 load_weights_full(const void* base, std::int64_t index) {
  if constexpr (D == DType::F32) {
    return _mm512_loadu_ps(static_cast<const float*>(base) + index);
  } else {
    __m256i half = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const std::uint16_t*>(base) + index));
    if constexpr (D == DType::BF16) {
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(half), 16));
    } else {
      return _mm512_cvtph_ps(half);
    }
  }
}

// One MR x NR tile of dot products over the whole k: each weight vector is converted once and
// used for MR rows, each activation vector loaded once for NR weight rows.
template <DType D, int MR, int NR>
void tile(const MatmulArgs& a, std::int64_t m0, std::int64_t n0) {
  __m512 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  const std::int64_t k = a.k;
  const std::int64_t k_full = k - k % kLanes;
  const float* xr[MR];
  for (int i = 0; i < MR; ++i) xr[i] = a.x + (m0 + i) * a.x_stride;
  std::int64_t wrow[NR];
  for (int j = 0; j < NR; ++j) wrow[j] = (n0 + j) * k;

  for (std::int64_t kk = 0; kk < k_full; kk += kLanes) {
    __m512 w[NR];
    for (int j = 0; j < NR; ++j) w[j] = load_weights_full<D>(a.w, wrow[j] + kk);
    for (int i = 0; i < MR; ++i) {
      __m512 xv = _mm512_loadu_ps(xr[i] + kk);
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_fmadd_ps(xv, w[j], acc[i][j]);
    }
  }
  if (k_full < k) {
    __mmask16 mask = static_cast<__mmask16>((1u << (k - k_full)) - 1u);
    __m512 w[NR];
    for (int j = 0; j < NR; ++j) w[j] = load_weights<D>(a.w, wrow[j] + k_full, mask);
    for (int i = 0; i < MR; ++i) {
      __m512 xv = _mm512_maskz_loadu_ps(mask, xr[i] + k_full);
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_fmadd_ps(xv, w[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    float* o = a.out + (m0 + i) * a.out_stride + n0;
    for (int j = 0; j < NR; ++j) {
      float v = _mm512_reduce_add_ps(acc[i][j]);
      o[j] = a.bias ? v + a.bias[n0 + j] : v;
    }
  }
}

#else  // portable fallback: the compiler vectorises the inner loop for whatever the target has

template <DType D, int MR, int NR>
void tile(const MatmulArgs& a, std::int64_t m0, std::int64_t n0) {
  for (int i = 0; i < MR; ++i) {
    const float* xr = a.x + (m0 + i) * a.x_stride;
    for (int j = 0; j < NR; ++j) {
      std::int64_t base = (n0 + j) * a.k;
      float sum = 0.0f;
      for (std::int64_t kk = 0; kk < a.k; ++kk) sum += xr[kk] * load_as_float(a.w, D, base + kk);
      a.out[(m0 + i) * a.out_stride + n0 + j] = a.bias ? sum + a.bias[n0 + j] : sum;
    }
  }
}

#endif

template <DType D, int MR>
void tile_rows(const MatmulArgs& a, std::int64_t m0, std::int64_t n0, std::int64_t n_count) {
  constexpr int NR = MR == 1 ? 8 : 4;
  std::int64_t n = n0;
  for (; n + NR <= n0 + n_count; n += NR) tile<D, MR, NR>(a, m0, n);
  for (; n < n0 + n_count; ++n) tile<D, MR, 1>(a, m0, n);
}

template <DType D>
void tile_any_rows(const MatmulArgs& a, std::int64_t m0, int mr, std::int64_t n0, std::int64_t n_count) {
  switch (mr) {
    case 1: tile_rows<D, 1>(a, m0, n0, n_count); break;
    case 2: tile_rows<D, 2>(a, m0, n0, n_count); break;
    case 3: tile_rows<D, 3>(a, m0, n0, n_count); break;
    case 4: tile_rows<D, 4>(a, m0, n0, n_count); break;
    case 5: tile_rows<D, 5>(a, m0, n0, n_count); break;
    default: tile_rows<D, 6>(a, m0, n0, n_count); break;
  }
}

// Rows are processed in blocks that stay in L2 while a thread's slice of weights streams past
// them; within a block, a strip of weight rows is reused for every group of six rows.
template <DType D>
void matmul_typed(const MatmulArgs& a) {
  constexpr std::int64_t kRowBlock = 64;
  constexpr std::int64_t kStrip = 16;  // weight rows per strip
  const int threads = omp_get_max_threads();
  const std::int64_t strips = (a.n + kStrip - 1) / kStrip;
#pragma omp parallel num_threads(threads) if (worth_parallel(2 * a.rows * a.n * a.k))
  {
    const int t = omp_get_thread_num();
    const int nt = omp_get_num_threads();
    const std::int64_t strip_begin = strips * t / nt, strip_end = strips * (t + 1) / nt;
    for (std::int64_t mb = 0; mb < a.rows; mb += kRowBlock) {
      const std::int64_t m_end = std::min(a.rows, mb + kRowBlock);
      for (std::int64_t s = strip_begin; s < strip_end; ++s) {
        const std::int64_t n0 = s * kStrip;
        const std::int64_t n_count = std::min(kStrip, a.n - n0);
        for (std::int64_t m = mb; m < m_end; m += 6) {
          tile_any_rows<D>(a, m, static_cast<int>(std::min<std::int64_t>(6, m_end - m)), n0, n_count);
        }
      }
    }
  }
}

}  // namespace

void matmul(const MatmulArgs& a) {
  if (a.rows == 0 || a.n == 0) return;
  switch (a.w_dtype) {
    case DType::F32: matmul_typed<DType::F32>(a); break;
    case DType::F16: matmul_typed<DType::F16>(a); break;
    case DType::BF16: matmul_typed<DType::BF16>(a); break;
  }
}

}  // namespace wedlm::cpu
