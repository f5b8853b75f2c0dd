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
CUtensorMap bf16_tensor_map(const void* data, std::int64_t rows, std::int64_t cols, std::int64_t stride,
                            unsigned box_rows);

// The same, remembered by its arguments: for matrices that live long (a KV cache layer) and are
// described at every launch, where encoding costs the host microseconds a call.
CUtensorMap cached_bf16_tensor_map(const void* data, std::int64_t rows, std::int64_t cols, std::int64_t stride,
                                   unsigned box_rows);

}  // namespace wedlm::cuda
