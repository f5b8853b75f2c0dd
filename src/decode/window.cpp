#include "decode/window.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

#include "util/error.h"

namespace wedlm {

void validate(const WedlmParams& params) {
  if (params.window < 1) fail("WeDLM window must be >= 1, got {}", params.window);
  if (!std::isfinite(params.entropy_threshold) || params.entropy_threshold < 0)
    fail("entropy threshold must be a number >= 0, got {}", params.entropy_threshold);
  if (!std::isfinite(params.position_penalty) || params.position_penalty < 0)
    fail("position penalty must be a number >= 0, got {}", params.position_penalty);
}

WedlmWindow::WedlmWindow(const WedlmParams& params, int32_t mask_id, DecodeLimits limits)
    : params_(params), mask_id_(mask_id), output_(std::move(limits)) {
  validate(params_);
  if (mask_id_ < 0) fail("mask token id must be >= 0, got {}", mask_id_);
  const int64_t size = std::min<int64_t>(params_.window, output_.kv_slots_left());
  slots_.assign(static_cast<size_t>(size), WindowSlot{});
}

StepPlan WedlmWindow::plan() {
  if (finished()) throw std::logic_error("WedlmWindow::plan after the sequence finished");
  if (planned_commit_ >= 0) throw std::logic_error("WedlmWindow::plan twice without apply");

  int32_t p = 0;
  while (p < static_cast<int32_t>(slots_.size()) && slots_[p].filled) ++p;
  const int64_t room = output_.kv_slots_left() - static_cast<int64_t>(slots_.size());
  slots_.resize(slots_.size() + static_cast<size_t>(std::clamp<int64_t>(room, 0, p)));

  StepPlan plan;
  plan.commit_count = p;
  plan.rows.reserve(slots_.size());
  planned_masks_.clear();
  for (int32_t i = 0; i < static_cast<int32_t>(slots_.size()); ++i) {
    if (slots_[i].filled) {
      plan.rows.push_back({slots_[i].token, i, false});
    } else {
      planned_masks_.push_back(i);
    }
  }
  plan.first_mask_row = static_cast<int32_t>(plan.rows.size());
  for (int32_t i : planned_masks_) plan.rows.push_back({mask_id_, i, true});
  planned_commit_ = p;
  return plan;
}

StepResult WedlmWindow::apply(std::span<const MaskRowResult> mask_results) {
  if (planned_commit_ < 0) throw std::logic_error("WedlmWindow::apply without plan");
  if (mask_results.size() != planned_masks_.size())
    throw std::invalid_argument("WedlmWindow::apply: one result per planned mask row expected");
  const int32_t p = std::exchange(planned_commit_, -1);
  ++steps_;

  StepResult result;
  for (int32_t i = 0; i < p; ++i) {
    result.committed.push_back(slots_[i].token);
    result.finish = output_.commit(slots_[i].token);
    if (result.finish != FinishReason::none) return result;
  }

  if (!planned_masks_.empty()) {
    // Adjusted entropies in double: the engine's fp32 entropy is exact input here, and the
    // comparison against tau should not add rounding of its own.
    const int32_t first = planned_masks_.front();
    const auto adjusted = [&](size_t j) {
      return double{mask_results[j].entropy} +
             params_.position_penalty * static_cast<double>(planned_masks_[j] - first);
    };
    bool any = false;
    size_t best = 0;
    for (size_t j = 0; j < planned_masks_.size(); ++j) {
      const double a = adjusted(j);
      if (a < params_.entropy_threshold) {
        slots_[planned_masks_[j]] = {true, mask_results[j].token};
        any = true;
      }
      if (a < adjusted(best)) best = j;  // strict: first argmin on ties
    }
    if (!any) slots_[planned_masks_[best]] = {true, mask_results[best].token};
  }
  slots_.erase(slots_.begin(), slots_.begin() + p);
  return result;
}

}  // namespace wedlm
