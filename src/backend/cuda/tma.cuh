#pragma once
// The TMA engine and mbarriers (sm_90): bulk tensor copies into shared memory that complete on
// an mbarrier's transaction count, and the barrier operations producer/consumer rings use.
#include <cuda.h>

#include <cstdint>

namespace wedlm::cuda {

__device__ __forceinline__ unsigned shared_address(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void mbar_init(unsigned bar, unsigned count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_expect_tx(unsigned bar, unsigned bytes) {
  asm volatile("mbarrier.expect_tx.relaxed.cta.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive_expect_tx(unsigned bar, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(unsigned bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_wait(unsigned bar, unsigned parity) {
  unsigned done = 0;
  do {
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  } while (done == 0);
}
// The first 1024-byte boundary at or after p: 128-byte-swizzled tiles start on one, so that the
// TMA engine's and wgmma's swizzle patterns line up (the dynamic area reserves 1024 extra bytes).
__device__ __forceinline__ unsigned char* align_1024(unsigned char* p) {
  return p + (1024 - shared_address(p) % 1024) % 1024;
}
// A ring of `stages` stages: full[s] completes on one arrival plus its copies' bytes, empty[s] on
// one arrival from each of `consumers`. Thread 0 initializes; the caller then syncs the block.
__device__ __forceinline__ void mbar_init_ring(std::uint64_t* full, std::uint64_t* empty, int stages, unsigned consumers) {
  if (threadIdx.x != 0) return;
  for (int s = 0; s < stages; ++s) {
    mbar_init(shared_address(&full[s]), 1);
    mbar_init(shared_address(&empty[s]), consumers);
  }
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}
// Box {64 k, rows} of a 2D tensor map at (k, row) into shared memory, counted on `bar`.
__device__ __forceinline__ void tma_load(unsigned dst, const CUtensorMap& map, int k, int row, unsigned bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];" ::"r"(
          dst),
      "l"(reinterpret_cast<std::uint64_t>(&map)), "r"(k), "r"(row), "r"(bar)
      : "memory");
}
// Box of a chunked (3D) tensor map (tensor_map.h) at (row, 64-column chunk), counted on `bar`.
__device__ __forceinline__ void tma_load_chunks(unsigned dst, const CUtensorMap& map, int row, int chunk, unsigned bar) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];" ::"r"(
          dst),
      "l"(reinterpret_cast<std::uint64_t>(&map)), "r"(0), "r"(row), "r"(chunk), "r"(bar)
      : "memory");
}
// Byte offset of row r's 16-byte chunk c in a 128-byte-swizzled span of rows (1024-byte aligned).
__device__ __forceinline__ unsigned swizzled(int r, int c) {
  return static_cast<unsigned>(r * 128 + ((c ^ (r & 7)) << 4));
}

}  // namespace wedlm::cuda
