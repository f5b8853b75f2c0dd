#pragma once
// TMA tensor maps: the descriptors cp.async.bulk.tensor reads a global matrix through. Encoded
// by the driver, reached through the runtime (no link-time libcuda dependency).
#include <cuda.h>

#include <cstdint>

namespace wedlm::cuda {

// Whether this driver can encode tensor maps.
bool tensor_maps_available();

// A bf16 [rows][cols] matrix (row stride `stride` elements, 16-byte aligned) read in boxes of 64
// columns x box_rows rows, 128-byte swizzled in shared memory; rows past the end read as zeros.
// With box_chunks > 1 (cols a multiple of 64) a box is box_chunks such spans side by side in the
// matrix, one after another in shared memory (a 3D map: coordinates 0, row, column / 64): one
// copy where box_chunks 2D boxes would be several, and a copy's cost is mostly per copy.
CUtensorMap bf16_tensor_map(const void* data, std::int64_t rows, std::int64_t cols, std::int64_t stride,
                            unsigned box_rows, unsigned box_chunks = 1);

// The same, remembered by its arguments: for matrices that live long (a KV cache layer) and are
// described at every launch, where encoding costs the host microseconds a call.
CUtensorMap cached_bf16_tensor_map(const void* data, std::int64_t rows, std::int64_t cols, std::int64_t stride,
                                   unsigned box_rows, unsigned box_chunks = 1);

}  // namespace wedlm::cuda
