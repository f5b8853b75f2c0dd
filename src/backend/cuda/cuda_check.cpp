#include "backend/cuda/cuda_check.h"

#include "util/error.h"

namespace wedlm::cuda {

void fail_cuda(cudaError_t e, const char* what, const char* file, int line) {
  fail("CUDA error in {} ({}:{}): {} ({})", what, file, line, cudaGetErrorString(e), cudaGetErrorName(e));
}

void fail_cublas(cublasStatus_t s, const char* what, const char* file, int line) {
  fail("cuBLASLt error in {} ({}:{}): {} ({})", what, file, line, cublasLtGetStatusName(s), cublasLtGetStatusString(s));
}

}  // namespace wedlm::cuda
