#pragma once
// The WeDLM-step GEMM (9..32 rows): weights and x staged through a 5-deep cp.async pipeline in
// shared memory, tensor cores on ldmatrix fragments, and a grid of exactly the blocks the GPU
// holds at once, which divide the (64-feature tile, 64-k chunk) iterations evenly between them
// (stream-K): a tile split between blocks is finished by the last of them to arrive, which adds
// the others' fp32 partial sums in a fixed order (results do not depend on timing).
// cuBLASLt's kernels for these shapes stream the weights 5-15% slower than the one-row GEMVs,
// cannot fuse the activation, and take no part in programmatic dependent launch.
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/gemm.h"

namespace wedlm::cuda {

constexpr std::int64_t kPipeMaxRows = 32;
constexpr int kPipeMaxFeatures = 128;
// fp32 values one partial slot holds (the largest tile: 128 features x 32 rows).
constexpr std::int64_t kPipeSlotFloats = kPipeMaxFeatures * kPipeMaxRows;
// Tile shapes (features a block x k a stage x stages): 64 x 64 x 5, 64 x 128 x 4, 128 x 64 x 4.
constexpr int kPipeShapes = 3;

// Partial slots and tickets a launch may need on this GPU.
std::int64_t pipe_slots_needed();
std::int64_t pipe_tickets_needed(std::int64_t n);
bool pipe_supported(const GemmArgs& args, int shape);
void launch_pipe(const GemmArgs& args, int shape, cudaStream_t stream);

}  // namespace wedlm::cuda
