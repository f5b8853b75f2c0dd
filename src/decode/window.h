#pragma once
// The WeDLM window of one sequence: which rows the next forward computes, and what its logits
// decide (DESIGN.md "WeDLM streaming parallel decoding — exact semantics"). Pure logic: the
// engine runs the forward, computes entropies and samples; this class only decides.
//
// One step is plan() -> forward over the planned rows -> apply(mask-row results).
//  * plan(): refill (append p masks, p = leading filled slots), then order the rows: filled
//    slots in window order, then mask slots in window order. Row k has logical position
//    len(C) + rows[k].window_index and writes its K/V to cache slot len(C) + k, where len(C) is
//    the sequence's committed length (prompt + committed output) before this step.
//  * apply(): rows 0..p-1 are exactly window slots 0..p-1, so their K/V is right; they are
//    committed (cache length grows by p). K/V written by rows p.. is garbage to be overwritten
//    by the next step. Then the masks are filled from their rows' entropy and sampled token.
//
// KV space: rows never exceed the cache slots left (kv_space - committed). The first window
// has min(W, kv_space) slots; a refill appends min(p, kv_space - committed - slots) masks. So
// the window shrinks only when the cache runs out, and it empties exactly when committed
// reaches kv_space, which ends the sequence with "length".
//
// Finishing: a committed stop token (kept) or max_tokens / kv_space ends the sequence in
// apply(); tokens committed after the stop in that step are dropped, and slots filled but not
// yet committed are discarded (no fill happens in the finishing step).
#include <cstdint>
#include <span>
#include <vector>

#include "decode/committed_output.h"
#include "wedlm/sampling.h"

namespace wedlm {

// Throws wedlm::Error for window < 1, or threshold / penalty negative or not finite.
void validate(const WedlmParams& params);

struct WindowSlot {
  bool filled = false;  // false: MASK
  int32_t token = 0;    // valid when filled
};

struct WindowRow {
  int32_t token = 0;         // the filled token, or the mask id
  int32_t window_index = 0;  // logical position offset: position = len(C) + window_index
  bool mask = false;
};

struct StepPlan {
  std::vector<WindowRow> rows;  // forward rows in order; row k -> cache slot len(C) + k
  int32_t commit_count = 0;     // p: rows 0..p-1 are committed by apply()
  // Mask rows are rows [first_mask_row, rows.size()), in window order: only their logits are
  // read, so the engine computes the lm_head for this contiguous range alone.
  int32_t first_mask_row = 0;
  int32_t mask_row_count() const { return static_cast<int32_t>(rows.size()) - first_mask_row; }
};

// What the engine computed for one mask row.
struct MaskRowResult {
  float entropy = 0;  // entropy_of_logits of the row's raw logits
  int32_t token = 0;  // the row's sampled token
};

class WedlmWindow {
 public:
  // Validates params and limits; mask_id >= 0.
  WedlmWindow(const WedlmParams& params, int32_t mask_id, DecodeLimits limits);

  // Refills and orders the rows of the next forward. Call once per step, then apply().
  StepPlan plan();

  // Takes one result per mask row of the last plan, in row order. Commits the p leading filled
  // slots, then (unless the sequence ended) fills: A_j = H_j + lambda * d_j with d_j = window
  // index of mask j minus that of the first mask; every mask with A_j < tau (strictly) takes
  // its token; if none, only the first argmin of A does. Filled slots are never re-masked.
  StepResult apply(std::span<const MaskRowResult> mask_results);

  bool finished() const { return output_.finished(); }
  FinishReason finish_reason() const { return output_.finish_reason(); }
  const std::vector<int32_t>& committed() const { return output_.tokens(); }
  std::span<const WindowSlot> slots() const { return slots_; }
  int64_t steps() const { return steps_; }  // applied steps = forwards (prefill not counted)

 private:
  WedlmParams params_;
  int32_t mask_id_;
  CommittedOutput output_;
  std::vector<WindowSlot> slots_;
  std::vector<int32_t> planned_masks_;  // window indices of the planned mask rows
  int32_t planned_commit_ = -1;         // p of the last plan; -1 when no plan is pending
  int64_t steps_ = 0;
};

}  // namespace wedlm
