#pragma once
// One exception type for every failure a user can cause (bad file, bad flag, bad request).
// The message carries its own context (file, tensor, field, request id); front ends print it as is.
#include <stdexcept>
#include <string>

namespace wedlm {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace wedlm
