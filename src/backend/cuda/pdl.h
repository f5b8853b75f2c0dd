#pragma once
// Programmatic dependent launch (sm_90). A decode step is a chain of ~11 kernels a layer, most
// of them short; launched plainly, each one starts only after its predecessor has drained, so
// the GPU idles through every kernel's ramp-up and tail. Launched with programmatic stream
// serialization, a kernel may start while its predecessor is still running: it does the work
// that depends on nothing before it (a GEMV streams its weights) and calls pdl_wait() before it
// reads or writes anything its predecessor touches. Every kernel launched through launch() must
// call pdl_wait() before its first dependent global access; kernels that do not are launched
// with <<<>>> (and then serialize fully, as before).
//
// Overlap is not transitive: a kernel may start while kernels two or more back are still
// running. Only data written before the chunk began may be read before pdl_wait(): each chunk's
// first kernel (embed) is launched plainly, so it starts after all earlier work has finished,
// and every later kernel of the chunk starts after it.
#include <cuda_runtime.h>

#include <utility>

#include "backend/cuda/cuda_check.h"

namespace wedlm::cuda {

// Blocks until the grids this one depends on have completed and their writes are visible.
// A no-op when the kernel was launched without a programmatic dependency.
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Lets the next kernel in the stream be scheduled once every block of this grid has reached
// here (or exited); it still waits in its own pdl_wait() for this grid to finish.
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Whether launch() asks for overlap (WEDLM_CUDA_PDL=0 turns it off, for measurements).
bool pdl_enabled();
void set_pdl_enabled(bool on);

template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t shared_bytes, cudaStream_t stream,
            Args&&... args) {
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = shared_bytes;
  config.stream = stream;
  cudaLaunchAttribute attribute[1] = {};
  attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute[0].val.programmaticStreamSerializationAllowed = pdl_enabled() ? 1 : 0;
  config.attrs = attribute;
  config.numAttrs = 1;
  WEDLM_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...));
}

}  // namespace wedlm::cuda
