#pragma once
// The reference decoding cases of tests/fixtures/decode (tools/make_decode_fixtures.py) as engine
// requests.
#include <cstdint>

#include <nlohmann/json.hpp>

#include "wedlm/engine.h"

namespace wedlm::test {

// The request a case describes; every stop id it uses is listed, so the model's eos is ignored.
inline GenerateRequest request_of_case(const nlohmann::json& c) {
  const nlohmann::json& p = c["params"];
  GenerateRequest req;
  req.prompt = c["prompt"].get<std::vector<std::int32_t>>();
  req.mode = c["mode"] == "ar" ? DecodeMode::ar : DecodeMode::wedlm;
  req.max_tokens = p["max_tokens"].get<std::int32_t>();
  req.stop_ids = p["stop_ids"].get<std::vector<std::int32_t>>();
  req.ignore_eos = true;
  if (req.mode == DecodeMode::wedlm) {
    req.wedlm.window = p["window"].get<std::int32_t>();
    req.wedlm.entropy_threshold = p["entropy_threshold"].get<double>();
    req.wedlm.position_penalty = p["position_penalty"].get<double>();
  }
  return req;
}

// The KV cache a case ran with: its kv_space after the prompt, or (unlimited) `unlimited` slots.
inline std::int64_t context_of_case(const nlohmann::json& c, std::int64_t unlimited = 1024) {
  const nlohmann::json& p = c["params"];
  if (!p.contains("kv_space") || p["kv_space"].is_null()) return unlimited;
  return static_cast<std::int64_t>(c["prompt"].size()) + p["kv_space"].get<std::int64_t>();
}

}  // namespace wedlm::test
