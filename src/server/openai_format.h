#pragma once
// OpenAI response shapes for completions and chat completions, whole and streamed, and the
// models list. Only formatting: the values come from the server.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/request_parser.h"

namespace wedlm::server {

// What every object of one response shares.
struct ResponseHeader {
  std::string id;        // cmpl-... or chatcmpl-...
  std::int64_t created;  // unix seconds
  std::string model;     // the served model id
  Endpoint endpoint;
};

struct Usage {
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
};

// A fresh, unique response id for the endpoint ("cmpl-" or "chatcmpl-" and 24 hex digits).
std::string make_response_id(Endpoint endpoint);
std::int64_t unix_seconds();

nlohmann::json usage_json(const Usage& usage);

// The non-streamed body. `token_ids` non-null adds the completion's ids to the choice.
nlohmann::json full_response(const ResponseHeader& header, const std::string& text,
                             const std::vector<std::int32_t>* token_ids, std::string_view finish_reason,
                             const Usage& usage);

// One streamed chunk: text (a delta for chat; `first` adds the assistant role), its ids when
// requested, and the finish reason on the last content chunk (empty: null).
nlohmann::json stream_chunk(const ResponseHeader& header, const std::string& text,
                            const std::vector<std::int32_t>* token_ids, std::string_view finish_reason, bool first);

// The closing chunk in OpenAI's stream_options.include_usage style: empty choices plus usage.
nlohmann::json usage_chunk(const ResponseHeader& header, const Usage& usage);

nlohmann::json models_list(std::span<const std::string> ids, std::int64_t created, std::int64_t context);

}  // namespace wedlm::server
