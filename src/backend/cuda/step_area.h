#pragma once
// The fixed device home of one chunk's host data (ids, positions, attention plan) while CUDA
// graphs are in use. A recorded graph bakes in every pointer it reads, so each chunk's data is
// copied to the same addresses before replay, in one copy from a pinned host image. The layout
// holds the largest plan any chunk of up to kMaxRows rows can have; only the block tables grow
// with the context, and when they outgrow their room the area is laid out anew (and every
// graph that points into it must be dropped).
#include <cuda_runtime.h>

#include <cstdint>
#include <span>

#include "backend/backend.h"
#include "backend/cuda/attention_plan.h"
#include "backend/cuda/device_memory.h"

namespace wedlm::cuda {

class StepArea {
 public:
  static constexpr std::int64_t kMaxRows = 64;  // chunks above this run eagerly (prefill)

  StepArea() = default;
  ~StepArea();
  StepArea(const StepArea&) = delete;
  StepArea& operator=(const StepArea&) = delete;

  // Makes room for plans of this shape with `tables` block-table entries. Returns true when it
  // had to lay the area out anew: pointers handed out before are then invalid.
  bool ensure(const AttentionShape& shape, int sm_count, std::int64_t tables);
  // Attention grid sizes that cover every plan of `rows` rows with tiles of `m_tile` units.
  int work_capacity(std::int64_t rows, int m_tile) const;
  int combine_capacity(std::int64_t rows, int m_tile) const;
  int combine_units_capacity(std::int64_t rows, int m_tile) const;
  // The combine grid of a recorded chunk: a block per (item, unit) pair of the plans it may
  // replay (at most `items` combine items: the plans' tile_heads), up to a few per
  // multiprocessor (the blocks loop over the rest).
  int combine_blocks(std::int64_t rows, int m_tile, int items) const;
  // Writes one chunk's data into the host image (waiting for the previous upload to finish
  // reading it). False when the plan exceeds the capacities of its row count.
  bool fill(std::span<const std::int32_t> ids, std::span<const std::int32_t> positions, const AttentionPlan& plan);
  // Copies the image to the device, ordered on `stream` before what follows.
  void upload(cudaStream_t stream);

  const std::int32_t* counts() const { return at(0); }
  const std::int32_t* ids() const { return at(ids_at_); }
  const std::int32_t* positions() const { return at(positions_at_); }
  const std::int32_t* row_slot() const { return at(row_slot_at_); }
  const std::int32_t* sequences() const { return at(sequences_at_); }
  const std::int32_t* work() const { return at(work_at_); }
  const std::int32_t* combine() const { return at(combine_at_); }
  const std::int32_t* tables() const { return at(tables_at_); }
  float* partial_o() const { return partial_o_.as<float>(); }
  float* partial_ml() const { return partial_ml_.as<float>(); }

 private:
  const std::int32_t* at(std::int64_t offset) const { return device_.as<std::int32_t>() + offset; }

  AttentionShape shape_{};
  int sm_count_ = 0;
  std::int64_t ids_at_ = 0, positions_at_ = 0, row_slot_at_ = 0, sequences_at_ = 0, work_at_ = 0, combine_at_ = 0,
               tables_at_ = 0, tables_capacity_ = 0, used_ = 0;
  DeviceMemory device_, partial_o_, partial_ml_;
  std::int32_t* host_ = nullptr;  // pinned image of device_
  cudaEvent_t uploaded_ = nullptr;  // the last upload's copy has read host_
  bool pending_ = false;
};

}  // namespace wedlm::cuda
