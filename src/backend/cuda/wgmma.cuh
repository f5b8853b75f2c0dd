#pragma once
// Warpgroup MMA (sm_90a): shared-memory matrix descriptors, the fence/commit/wait protocol, and
// the multiply shapes the attention and GEMM kernels use. Defined only where the device code is
// built for sm_90a (WEDLM_WGMMA_DEVICE); host code and other targets see nothing.
#include <cstdint>

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define WEDLM_WGMMA_DEVICE 1
#endif

namespace wedlm::cuda {

#ifdef WEDLM_WGMMA_DEVICE
// Shared memory matrix descriptor (128-byte swizzle): start address, leading and stride byte
// offsets (>> 4), layout type 1 in bits 62-63. Tiles are 1024-byte aligned, so the base offset
// is 0 even when the start moves by 32 bytes to a later 16-element k step.
__device__ __forceinline__ std::uint64_t smem_desc(unsigned addr, unsigned leading, unsigned stride) {
  return static_cast<std::uint64_t>((addr & 0x3FFFF) >> 4) | (static_cast<std::uint64_t>(leading >> 4) << 16) |
         (static_cast<std::uint64_t>(stride >> 4) << 32) | (std::uint64_t{1} << 62);
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
// Until at most N committed groups of this warpgroup are still running.
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Keeps the compiler from moving accesses of wgmma operand registers across a wait (it sees the
// asm statement that issued them as done at once).
template <int N>
__device__ __forceinline__ void fence_registers(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(r[i])::"memory");
}
// Pins a descriptor made before a batch's wgmma.fence: an instruction that writes a wgmma's
// register between the fence and the commit makes ptxas serialize the batch.
__device__ __forceinline__ void pin_descriptor(std::uint64_t& d) { asm volatile("" : "+l"(d)::"memory"); }

// D (64 x N, fp32) += A (64 x 16, shared) B^T (B: N x 16, shared), both K-major, for the
// GEMMs of few rows (A the weights, B the rows of x). D's register 4j + e holds row
// (warp % 4) * 16 + lane / 4 + (e >= 2 ? 8 : 0), column 8j + 2 (lane % 4) + (e & 1): the
// mma.sync m16n8 accumulator layout, one 8-column block after another.
template <int N>
__device__ __forceinline__ void wgmma_ss(float (&d)[N / 2], std::uint64_t a, std::uint64_t b);

template <>
__device__ __forceinline__ void wgmma_ss<16>(float (&d)[8], std::uint64_t a, std::uint64_t b) {
  asm volatile(
      "wgmma.mma_async.sync.aligned.m64n16k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7}, %8, %9, 1, 1, 1, 0, 0;\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
      : "l"(a), "l"(b)
      : "memory");
}

template <>
__device__ __forceinline__ void wgmma_ss<32>(float (&d)[16], std::uint64_t a, std::uint64_t b) {
  asm volatile(
      "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, %16, %17, 1, 1, 1, 0, 0;\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),
        "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
      : "l"(a), "l"(b)
      : "memory");
}
#endif

}  // namespace wedlm::cuda
