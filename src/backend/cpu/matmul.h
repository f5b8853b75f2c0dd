#pragma once
// out[m, n] = sum_k x[m, k] * w[n, k] (+ bias[n]) with fp32 activations and weights in the
// checkpoint's dtype, converted in registers: the weights are never copied.
#include <cstdint>

#include "util/dtype.h"

namespace wedlm::cpu {

struct MatmulArgs {
  const float* x = nullptr;       // [rows, k], row stride x_stride
  std::int64_t x_stride = 0;
  const void* w = nullptr;        // [n, k] contiguous, dtype w_dtype
  DType w_dtype = DType::F32;
  const float* bias = nullptr;    // [n] or null
  float* out = nullptr;           // [rows, n], row stride out_stride
  std::int64_t out_stride = 0;
  std::int64_t rows = 0, n = 0, k = 0;
};

// Multi-threaded (OpenMP) over the output columns.
void matmul(const MatmulArgs& args);

}  // namespace wedlm::cpu
