#pragma once
// Pieces of the online softmax over mma fragments that both register-tiled attention kernels
// use: a fragment row's scores are spread over the 4 threads of a quad (lanes 4g .. 4g + 3).
#include <cuda_bf16.h>

namespace wedlm::cuda {

// The maximum / sum of v over the quad this lane belongs to.
__device__ __forceinline__ float quad_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
  return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float quad_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

// Two floats as a bf16 pair in one register, lo at the lower address (an A-operand half).
__device__ __forceinline__ unsigned pack_bf16x2(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const unsigned*>(&v);
}

}  // namespace wedlm::cuda
