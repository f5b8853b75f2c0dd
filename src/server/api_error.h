#pragma once
// A request the server refuses, as OpenAI reports it: an HTTP status and an error object
// {"error": {"message", "type", "param", "code"}}. Thrown by parsing and validation, caught once
// in the route wrapper, so every 4xx leaves the server the same way.
#include <optional>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace wedlm::server {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string message, std::optional<std::string> param = std::nullopt,
           std::optional<std::string> code = std::nullopt, std::string type = "invalid_request_error")
      : std::runtime_error(message), status_(status), type_(std::move(type)), param_(std::move(param)),
        code_(std::move(code)) {}

  int status() const { return status_; }
  nlohmann::json body() const;

 private:
  int status_;
  std::string type_;
  std::optional<std::string> param_;
  std::optional<std::string> code_;
};

// 400 invalid_request_error naming the offending field.
[[noreturn]] void bad_param(const std::string& param, const std::string& message);

// The error object for a status the router produced on its own (404, 413, ...).
nlohmann::json error_body(const std::string& message, const std::string& type,
                          const std::optional<std::string>& param, const std::optional<std::string>& code);

}  // namespace wedlm::server
