#include "backend/cuda/step_area.h"

#include <algorithm>
#include <cstring>

#include "backend/cuda/cuda_check.h"

namespace wedlm::cuda {

namespace {

constexpr std::int64_t kCounts = 4;  // {work items, combine items, combine units}, padded to 16 bytes
// Combine blocks a multiprocessor of a recorded chunk's grid: a 64-row step of one sequence has
// 8 KV heads x 4 tiles x 64 units = 2048 pairs, about 16 per multiprocessor of an H100.
constexpr std::int64_t kCombineBlocksPerSm = 16;
constexpr std::int64_t kSequenceInts = sizeof(AttnSequence) / sizeof(std::int32_t);
constexpr std::int64_t kWorkInts = sizeof(AttnWork) / sizeof(std::int32_t);
constexpr std::int64_t kCombineInts = sizeof(AttnCombine) / sizeof(std::int32_t);

std::int64_t round4(std::int64_t n) { return (n + 3) / 4 * 4; }

}  // namespace

StepArea::~StepArea() {
  if (host_ != nullptr) cudaFreeHost(host_);
  if (uploaded_ != nullptr) cudaEventDestroy(uploaded_);
}

// plan_attention makes at most `base` tiles x KV heads with `want` = max(1, floor(c sm / base))
// splits each (c = kAttentionCtasPerSm), so at most max(base, c sm) <= c sm + base work items;
// a sequence of r rows has at most ceil(r group / m) tiles, and the sequences of a chunk at most
// ceil(rows group / m) + rows.
int StepArea::combine_capacity(std::int64_t rows, int m_tile) const {
  const std::int64_t group = shape_.num_heads / shape_.num_kv_heads;
  return static_cast<int>(shape_.num_kv_heads * ((rows * group + m_tile - 1) / m_tile + rows));
}

int StepArea::combine_units_capacity(std::int64_t rows, int m_tile) const {
  const std::int64_t group = shape_.num_heads / shape_.num_kv_heads;
  return static_cast<int>(std::min<std::int64_t>(m_tile, rows * group));
}

int StepArea::combine_blocks(std::int64_t rows, int m_tile, int items) const {
  const std::int64_t pairs = static_cast<std::int64_t>(items) * combine_units_capacity(rows, m_tile);
  return static_cast<int>(std::min<std::int64_t>(pairs, kCombineBlocksPerSm * sm_count_));
}

int StepArea::work_capacity(std::int64_t rows, int m_tile) const {
  return kAttentionCtasPerSm * sm_count_ + combine_capacity(rows, m_tile);
}

bool StepArea::ensure(const AttentionShape& shape, int sm_count, std::int64_t tables) {
  const bool same_shape = shape.num_heads == shape_.num_heads && shape.num_kv_heads == shape_.num_kv_heads &&
                          shape.head_dim == shape_.head_dim && sm_count == sm_count_;
  if (same_shape && tables <= tables_capacity_ && device_.get() != nullptr) return false;
  if (pending_) WEDLM_CUDA_CHECK(cudaEventSynchronize(uploaded_));
  pending_ = false;
  shape_ = shape;
  sm_count_ = sm_count;
  tables_capacity_ = std::max<std::int64_t>({tables * 2, tables_capacity_, 4096});
  // Tiles of 16 units give the most work items; larger tiles the largest partial slots.
  const std::int64_t work = work_capacity(kMaxRows, 16), combine = combine_capacity(kMaxRows, 16);
  ids_at_ = kCounts;
  positions_at_ = ids_at_ + kMaxRows;
  row_slot_at_ = positions_at_ + kMaxRows;
  sequences_at_ = row_slot_at_ + kMaxRows;
  work_at_ = round4(sequences_at_ + kMaxRows * kSequenceInts);
  combine_at_ = round4(work_at_ + work * kWorkInts);
  tables_at_ = round4(combine_at_ + combine * kCombineInts);
  const std::int64_t total = tables_at_ + tables_capacity_;
  device_ = DeviceMemory(static_cast<std::size_t>(total) * sizeof(std::int32_t));
  if (host_ != nullptr) WEDLM_CUDA_CHECK(cudaFreeHost(host_));
  host_ = nullptr;
  WEDLM_CUDA_CHECK(cudaMallocHost(&host_, static_cast<std::size_t>(total) * sizeof(std::int32_t)));
  std::memset(host_, 0, static_cast<std::size_t>(total) * sizeof(std::int32_t));
  if (uploaded_ == nullptr) WEDLM_CUDA_CHECK(cudaEventCreateWithFlags(&uploaded_, cudaEventDisableTiming));
  const std::int64_t slots = std::max({work_capacity(kMaxRows, 16) * 16, work_capacity(kMaxRows, 64) * 64,
                                       work_capacity(kMaxRows, 128) * 128});
  const std::int64_t dp = padded_head_dim(static_cast<int>(shape.head_dim));
  if (partial_o_.get() == nullptr || partial_o_.bytes() < static_cast<std::size_t>(slots * dp) * sizeof(float)) {
    partial_o_ = DeviceMemory(static_cast<std::size_t>(slots * dp) * sizeof(float));
    partial_ml_ = DeviceMemory(static_cast<std::size_t>(slots * 2) * sizeof(float));
  }
  return true;
}

bool StepArea::fill(std::span<const std::int32_t> ids, std::span<const std::int32_t> positions, const AttentionPlan& plan) {
  const std::int64_t rows = static_cast<std::int64_t>(ids.size());
  const std::int64_t sequence_ints = plan.tables_at - plan.sequences_at;
  const std::int64_t table_ints = plan.work_at - plan.tables_at;
  if (rows > kMaxRows || static_cast<std::int64_t>(positions.size()) != rows || plan.rows != rows ||
      sequence_ints > kMaxRows * kSequenceInts || table_ints > tables_capacity_ ||
      plan.work_count > work_capacity(rows, plan.m_tile) || plan.combine_count > combine_capacity(rows, plan.m_tile) ||
      plan.combine_units > combine_units_capacity(rows, plan.m_tile)) {
    return false;
  }
  if (pending_) WEDLM_CUDA_CHECK(cudaEventSynchronize(uploaded_));
  pending_ = false;
  auto put = [&](std::int64_t dest, const std::int32_t* src, std::int64_t n) {
    if (n > 0) std::memcpy(host_ + dest, src, static_cast<std::size_t>(n) * sizeof(std::int32_t));
  };
  host_[0] = plan.work_count;
  host_[1] = plan.combine_count;
  host_[2] = plan.combine_units;
  put(ids_at_, ids.data(), rows);
  put(positions_at_, positions.data(), rows);
  put(row_slot_at_, plan.packed.data() + plan.row_slot_at, rows);
  put(sequences_at_, plan.packed.data() + plan.sequences_at, sequence_ints);
  put(work_at_, plan.packed.data() + plan.work_at, static_cast<std::int64_t>(plan.work_count) * kWorkInts);
  put(combine_at_, plan.packed.data() + plan.combine_at, static_cast<std::int64_t>(plan.combine_count) * kCombineInts);
  // Work items index the tables from 0 (each sequence's table_offset): same order as packed.
  put(tables_at_, plan.packed.data() + plan.tables_at, table_ints);
  used_ = tables_at_ + table_ints;
  return true;
}

void StepArea::upload(cudaStream_t stream) {
  WEDLM_CUDA_CHECK(cudaMemcpyAsync(device_.get(), host_, static_cast<std::size_t>(used_) * sizeof(std::int32_t),
                                   cudaMemcpyHostToDevice, stream));
  WEDLM_CUDA_CHECK(cudaEventRecord(uploaded_, stream));
  pending_ = true;
}

}  // namespace wedlm::cuda
