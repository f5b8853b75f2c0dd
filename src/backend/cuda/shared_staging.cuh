#pragma once
// Moves into and out of shared memory that several kernels share: 16-byte asynchronous copies
// from global memory and ldmatrix fragment loads (sm_80+).

namespace wedlm::cuda {

// Asynchronous 16-byte copy global -> shared (zeros when !valid; `src` must still be a mapped
// address).
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(valid ? 16 : 0));
}

// Four 8x8 b16 matrices from shared memory, lane l giving the address of row l % 8 of matrix l / 8.
__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], unsigned addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

}  // namespace wedlm::cuda
