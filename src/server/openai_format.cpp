#include "server/openai_format.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>

namespace wedlm::server {

namespace {

const char* object_name(Endpoint endpoint, bool chunk) {
  if (endpoint == Endpoint::chat) return chunk ? "chat.completion.chunk" : "chat.completion";
  return "text_completion";  // OpenAI uses the same name for streamed completion chunks
}

nlohmann::json header_json(const ResponseHeader& h, bool chunk) {
  return {{"id", h.id}, {"object", object_name(h.endpoint, chunk)}, {"created", h.created}, {"model", h.model}};
}

nlohmann::json finish_json(std::string_view finish_reason) {
  return finish_reason.empty() ? nlohmann::json(nullptr) : nlohmann::json(std::string(finish_reason));
}

// The fields a choice ends with, streamed or not.
void end_choice(nlohmann::json& choice, std::string_view finish_reason, const std::vector<std::int32_t>* token_ids) {
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = finish_json(finish_reason);
  if (token_ids) choice["token_ids"] = *token_ids;
}

}  // namespace

std::string make_response_id(Endpoint endpoint) {
  // A random base per process plus a counter: unique within the process, unlikely to repeat
  // across restarts.
  static const std::uint64_t base = std::random_device{}() * 0x9E3779B97F4A7C15ull ^ std::random_device{}();
  static std::atomic<std::uint64_t> counter{0};
  const std::uint64_t n = counter.fetch_add(1);
  char hex[32];
  std::snprintf(hex, sizeof hex, "%016llx%08llx", static_cast<unsigned long long>(base + (n >> 32)),
                static_cast<unsigned long long>(n & 0xffffffffull));
  return std::string(endpoint == Endpoint::chat ? "chatcmpl-" : "cmpl-") + hex;
}

std::int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

nlohmann::json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

nlohmann::json full_response(const ResponseHeader& h, const std::string& text, const std::vector<std::int32_t>* token_ids,
                             std::string_view finish_reason, const Usage& usage) {
  nlohmann::json choice = {{"index", 0}};
  if (h.endpoint == Endpoint::chat) {
    choice["message"] = {{"role", "assistant"}, {"content", text}};
  } else {
    choice["text"] = text;
  }
  end_choice(choice, finish_reason, token_ids);
  nlohmann::json body = header_json(h, false);
  body["choices"] = nlohmann::json::array({std::move(choice)});
  body["usage"] = usage_json(usage);
  return body;
}

nlohmann::json stream_chunk(const ResponseHeader& h, const std::string& text, const std::vector<std::int32_t>* token_ids,
                            std::string_view finish_reason, bool first) {
  nlohmann::json choice = {{"index", 0}};
  if (h.endpoint == Endpoint::chat) {
    nlohmann::json delta = nlohmann::json::object();
    if (first) delta["role"] = "assistant";
    if (!text.empty() || first) delta["content"] = text;
    choice["delta"] = std::move(delta);
  } else {
    choice["text"] = text;
  }
  end_choice(choice, finish_reason, token_ids);
  nlohmann::json chunk = header_json(h, true);
  chunk["choices"] = nlohmann::json::array({std::move(choice)});
  return chunk;
}

nlohmann::json usage_chunk(const ResponseHeader& h, const Usage& usage) {
  nlohmann::json chunk = header_json(h, true);
  chunk["choices"] = nlohmann::json::array();
  chunk["usage"] = usage_json(usage);
  return chunk;
}

nlohmann::json models_list(std::span<const std::string> ids, std::int64_t created, std::int64_t context) {
  nlohmann::json data = nlohmann::json::array();
  for (const std::string& id : ids) {
    data.push_back({{"id", id}, {"object", "model"}, {"created", created}, {"owned_by", "wedlm"}, {"max_model_len", context}});
  }
  return {{"object", "list"}, {"data", std::move(data)}};
}

}  // namespace wedlm::server
