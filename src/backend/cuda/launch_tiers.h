#pragma once
// Launch dispatch for kernels instantiated per row tier (R rows or fewer) and per fused
// epilogue/prologue, so that the host picks the instantiation from the operands.
#include <cstdint>
#include <type_traits>

namespace wedlm::cuda {

// Calls launch_tier(std::integral_constant<int, T>) for the first tier T >= rows (the last tier
// takes anything larger; the caller bounds rows first).
template <int First, int... Rest, typename Launch>
void by_rows(std::int64_t rows, Launch&& launch_tier) {
  if constexpr (sizeof...(Rest) == 0) {
    launch_tier(std::integral_constant<int, First>{});
  } else if (rows <= First) {
    launch_tier(std::integral_constant<int, First>{});
  } else {
    by_rows<Rest...>(rows, launch_tier);
  }
}

// Calls launch_flag(std::true_type{}) or launch_flag(std::false_type{}).
template <typename Launch>
void by_flag(bool flag, Launch&& launch_flag) {
  if (flag) {
    launch_flag(std::true_type{});
  } else {
    launch_flag(std::false_type{});
  }
}

}  // namespace wedlm::cuda
