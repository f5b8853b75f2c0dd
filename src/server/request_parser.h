#pragma once
// OpenAI request bodies -> validated generation parameters. Pure: no model, no tokenizer, so
// every 400 a client can cause by its body is decided (and unit-tested) here. Checks that need
// the model (token ids in range, prompt fits the context, stop strings need a tokenizer) are
// made by the server once the prompt is built.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "wedlm/engine.h"

namespace wedlm::server {

enum class Endpoint { completions, chat };

struct ParsedRequest {
  Endpoint endpoint = Endpoint::completions;
  std::string model;  // empty when the body has none
  // Completions: the prompt is text or token ids (exactly one is set).
  std::optional<std::string> prompt_text;
  std::vector<std::int32_t> prompt_ids;
  // Chat: messages with text content (content parts flattened), tools or null, and the
  // template switch clients pass as chat_template_kwargs.enable_thinking.
  nlohmann::ordered_json messages;
  nlohmann::ordered_json tools;
  std::optional<bool> enable_thinking;
  // Decoding and sampling; `stop_ids` holds the client's stop_token_ids (extension, as vLLM);
  // `prompt` and the model's default stop ids are added by the server.
  GenerateRequest generate;
  std::optional<std::int32_t> max_tokens;  // absent: 16 for completions, the context for chat (as OpenAI)
  std::vector<std::string> stop_strings;
  bool stream = false;
  bool include_usage = true;      // stream_options.include_usage; a usage chunk ends the stream
  bool return_token_ids = false;  // extension: token ids next to the text (needed without a tokenizer)
};

// Throws ApiError (400) for malformed JSON, wrong types and out-of-range values, naming the field.
ParsedRequest parse_request(std::string_view body, Endpoint endpoint);

}  // namespace wedlm::server
