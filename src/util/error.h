#pragma once
// One exception type for every failure a user can cause (bad file, bad flag, bad request).
// The message carries its own context (file, tensor, field, request id); front ends print it as is.
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace wedlm {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace wedlm
