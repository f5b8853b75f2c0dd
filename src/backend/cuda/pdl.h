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

// The configuration launch() uses: programmatic serialization as pdl_enabled() says and, when
// cluster > 1, clusters of `cluster` consecutive blocks along x (grid.x a multiple of it; the
// cluster shape is the first attribute). `attributes` must outlive the configuration.
inline cudaLaunchConfig_t launch_config(dim3 grid, dim3 block, std::size_t shared_bytes, cudaStream_t stream,
                                        unsigned cluster, cudaLaunchAttribute (&attributes)[2]) {
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = shared_bytes;
  config.stream = stream;
  attributes[0] = {};
  attributes[1] = {};
  int n = 0;
  if (cluster > 1) {
    attributes[n].id = cudaLaunchAttributeClusterDimension;
    attributes[n].val.clusterDim.x = cluster;
    attributes[n].val.clusterDim.y = 1;
    attributes[n].val.clusterDim.z = 1;
    ++n;
  }
  attributes[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attributes[n].val.programmaticStreamSerializationAllowed = pdl_enabled() ? 1 : 0;
  config.attrs = attributes;
  config.numAttrs = static_cast<unsigned>(n + 1);
  return config;
}

// How many clusters of `cluster` blocks of `kernel` (block threads, dynamic shared bytes) the GPU
// runs at once; 0 when none fits or the query fails (a small partition may take none).
template <typename... Params>
int max_active_clusters(void (*kernel)(Params...), unsigned block, int shared_bytes, unsigned cluster) {
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, shared_bytes) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  cudaLaunchAttribute attributes[2];
  cudaLaunchConfig_t config = launch_config(dim3(cluster), block, static_cast<std::size_t>(shared_bytes), nullptr, cluster,
                                            attributes);
  config.numAttrs = 1;  // the cluster shape alone
  int clusters = 0;
  if (cudaOccupancyMaxActiveClusters(&clusters, kernel, &config) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return clusters;
}

template <typename... Params, typename... Args>
void launch_clustered(void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t shared_bytes, unsigned cluster,
                      cudaStream_t stream, Args&&... args) {
  cudaLaunchAttribute attributes[2];
  const cudaLaunchConfig_t config = launch_config(grid, block, shared_bytes, stream, cluster, attributes);
  WEDLM_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...));
}

template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t shared_bytes, cudaStream_t stream,
            Args&&... args) {
  launch_clustered(kernel, grid, block, shared_bytes, 1, stream, std::forward<Args>(args)...);
}

}  // namespace wedlm::cuda
