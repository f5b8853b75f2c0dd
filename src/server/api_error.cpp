#include "server/api_error.h"

namespace wedlm::server {

nlohmann::json error_body(const std::string& message, const std::string& type,
                          const std::optional<std::string>& param, const std::optional<std::string>& code) {
  nlohmann::json error = {{"message", message}, {"type", type}, {"param", nullptr}, {"code", nullptr}};
  if (param) error["param"] = *param;
  if (code) error["code"] = *code;
  return {{"error", std::move(error)}};
}

nlohmann::json ApiError::body() const { return error_body(what(), type_, param_, code_); }

void bad_param(const std::string& param, const std::string& message) {
  throw ApiError(400, message, param, "invalid_value");
}

}  // namespace wedlm::server
