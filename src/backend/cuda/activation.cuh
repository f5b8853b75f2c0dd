#pragma once
// silu(gate) * up on bf16-rounded inputs, one formula for the standalone kernel and the GEMV
// epilogue that fuses it, so both paths give the same bits.
#include <cuda_bf16.h>

namespace wedlm::cuda {

__device__ __forceinline__ __nv_bfloat16 silu_times(float gate, float up) {
  return __float2bfloat16(gate / (1.0f + expf(-gate)) * up);
}

}  // namespace wedlm::cuda
