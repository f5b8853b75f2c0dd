#pragma once
// Every CUDA runtime and cuBLAS call goes through these checks, so a failure names the call and
// where it happened instead of surfacing later as a wrong number.
#include <cublasLt.h>
#include <cuda_runtime.h>

// Kept free of fmt so that nvcc never compiles it: the throwing functions live in cuda_check.cpp.

namespace wedlm::cuda {

[[noreturn]] void fail_cuda(cudaError_t e, const char* what, const char* file, int line);
[[noreturn]] void fail_cublas(cublasStatus_t s, const char* what, const char* file, int line);

}  // namespace wedlm::cuda

#define WEDLM_CUDA_CHECK(call)                                                              \
  do {                                                                                      \
    cudaError_t wedlm_cuda_status_ = (call);                                                \
    if (wedlm_cuda_status_ != cudaSuccess)                                                  \
      ::wedlm::cuda::fail_cuda(wedlm_cuda_status_, #call, __FILE__, __LINE__);              \
  } while (0)

// After a kernel launch: catches bad launch configurations at once (asynchronous faults show up
// at the next synchronizing call, which is checked too).
#define WEDLM_CUDA_CHECK_LAUNCH(name)                                                       \
  do {                                                                                      \
    cudaError_t wedlm_cuda_status_ = cudaGetLastError();                                    \
    if (wedlm_cuda_status_ != cudaSuccess)                                                  \
      ::wedlm::cuda::fail_cuda(wedlm_cuda_status_, "launch of " name, __FILE__, __LINE__);  \
  } while (0)

#define WEDLM_CUBLAS_CHECK(call)                                                            \
  do {                                                                                      \
    cublasStatus_t wedlm_cublas_status_ = (call);                                           \
    if (wedlm_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                      \
      ::wedlm::cuda::fail_cublas(wedlm_cublas_status_, #call, __FILE__, __LINE__);          \
  } while (0)
