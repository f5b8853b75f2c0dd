#include "backend/cuda/sm90a.h"

#include <cuda_runtime.h>

#include "backend/cuda/tensor_map.h"

namespace wedlm::cuda {

bool sm90a_kernels_run() {
#if defined(WEDLM_CUDA_SM90A)
  static const bool run = [] {
    int device = 0;
    cudaDeviceProp prop{};
    if (cudaGetDevice(&device) != cudaSuccess || cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
      (void)cudaGetLastError();
      return false;
    }
    return prop.major == 9 && prop.minor == 0 && tensor_maps_available();
  }();
  return run;
#else
  return false;
#endif
}

}  // namespace wedlm::cuda
