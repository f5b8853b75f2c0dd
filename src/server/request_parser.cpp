#include "server/request_parser.h"

#include <cmath>
#include <limits>

#include "server/api_error.h"

namespace wedlm::server {

namespace {

using Json = nlohmann::ordered_json;

// OpenAI clients send null for "not set"; treat it as absent everywhere.
const Json* field(const Json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<double> number(const Json& body, const char* key) {
  const Json* v = field(body, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) bad_param(key, std::string("'") + key + "' must be a number");
  const double x = v->get<double>();
  if (!std::isfinite(x)) bad_param(key, std::string("'") + key + "' must be finite");
  return x;
}

// Integers only: 2.5 is refused rather than truncated.
std::optional<std::int64_t> integer(const Json& body, const char* key) {
  const Json* v = field(body, key);
  if (!v) return std::nullopt;
  if (v->is_number_unsigned()) {
    const auto u = v->get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      bad_param(key, std::string("'") + key + "' is too large");
    }
    return static_cast<std::int64_t>(u);
  }
  if (v->is_number_integer()) return v->get<std::int64_t>();
  if (v->is_number_float()) {
    const double x = v->get<double>();
    if (std::isfinite(x) && x == std::floor(x) && std::fabs(x) < 9e15) return static_cast<std::int64_t>(x);
  }
  bad_param(key, std::string("'") + key + "' must be an integer");
}

std::optional<bool> boolean(const Json& body, const char* key) {
  const Json* v = field(body, key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) bad_param(key, std::string("'") + key + "' must be a boolean");
  return v->get<bool>();
}

std::optional<std::string> string(const Json& body, const char* key) {
  const Json* v = field(body, key);
  if (!v) return std::nullopt;
  if (!v->is_string()) bad_param(key, std::string("'") + key + "' must be a string");
  return v->get<std::string>();
}

std::int32_t to_int32(std::int64_t x, const char* key) {
  if (x > std::numeric_limits<std::int32_t>::max()) bad_param(key, std::string("'") + key + "' is too large");
  return static_cast<std::int32_t>(x);
}

std::vector<std::int32_t> token_ids(const Json& array, const char* key) {
  std::vector<std::int32_t> ids;
  ids.reserve(array.size());
  for (const Json& v : array) {
    if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > std::numeric_limits<std::int32_t>::max()) {
      bad_param(key, std::string("'") + key + "' token ids must be non-negative integers");
    }
    ids.push_back(static_cast<std::int32_t>(v.get<std::int64_t>()));
  }
  return ids;
}

// "text", [1, 2, 3], ["text"] or [[1, 2, 3]]: one prompt. Several prompts in one request
// (OpenAI's batch form) would need n > 1 style fan-out, which the server does not do.
void parse_prompt(const Json& body, ParsedRequest& r) {
  const Json* p = field(body, "prompt");
  if (!p) bad_param("prompt", "'prompt' is required");
  if (p->is_string()) {
    r.prompt_text = p->get<std::string>();
  } else if (p->is_array()) {
    if (p->empty()) bad_param("prompt", "'prompt' must not be empty");
    const Json& first = p->front();
    if (first.is_number()) {
      r.prompt_ids = token_ids(*p, "prompt");
    } else if (first.is_string() || first.is_array()) {
      if (p->size() != 1) bad_param("prompt", "only one prompt per request is supported");
      if (first.is_string()) {
        r.prompt_text = first.get<std::string>();
      } else {
        r.prompt_ids = token_ids(first, "prompt");
      }
    } else {
      bad_param("prompt", "'prompt' must be a string, an array of token ids, or a list of one string");
    }
  } else {
    bad_param("prompt", "'prompt' must be a string, an array of token ids, or a list of one string");
  }
  if ((r.prompt_text && r.prompt_text->empty()) || (!r.prompt_text && r.prompt_ids.empty())) {
    bad_param("prompt", "'prompt' must not be empty");
  }
}

// Content may be a string, null, or a list of parts; only text parts exist for this model.
Json text_content(const Json& content, std::size_t index) {
  const std::string where = "messages[" + std::to_string(index) + "].content";
  if (content.is_string() || content.is_null()) return content;
  if (!content.is_array()) bad_param(where, "'" + where + "' must be a string, null or a list of text parts");
  std::string text;
  for (const Json& part : content) {
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string()) {
      bad_param(where, "'" + where + "' parts must be {\"type\": \"text\", \"text\": string}");
    }
    text += part["text"].get<std::string>();
  }
  return text;
}

void parse_messages(const Json& body, ParsedRequest& r) {
  const Json* m = field(body, "messages");
  if (!m) bad_param("messages", "'messages' is required");
  if (!m->is_array() || m->empty()) bad_param("messages", "'messages' must be a non-empty array");
  r.messages = Json::array();
  for (std::size_t i = 0; i < m->size(); ++i) {
    const Json& msg = (*m)[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!msg.is_object()) bad_param(where, "'" + where + "' must be an object");
    if (!msg.contains("role") || !msg["role"].is_string()) bad_param(where + ".role", "'" + where + ".role' must be a string");
    Json copy = msg;
    copy["content"] = text_content(msg.contains("content") ? msg["content"] : Json(nullptr), i);
    r.messages.push_back(std::move(copy));
  }
  if (const Json* tools = field(body, "tools")) {
    if (!tools->is_array()) bad_param("tools", "'tools' must be an array");
    r.tools = *tools;
  }
  if (const Json* kwargs = field(body, "chat_template_kwargs")) {
    if (!kwargs->is_object()) bad_param("chat_template_kwargs", "'chat_template_kwargs' must be an object");
    r.enable_thinking = boolean(*kwargs, "enable_thinking");
  }
}

void parse_stop(const Json& body, ParsedRequest& r) {
  const Json* s = field(body, "stop");
  if (!s) return;
  if (s->is_string()) {
    r.stop_strings.push_back(s->get<std::string>());
  } else if (s->is_array()) {
    if (s->size() > 4) bad_param("stop", "'stop' takes at most 4 sequences");
    for (const Json& v : *s) {
      if (!v.is_string()) bad_param("stop", "'stop' must be a string or a list of strings");
      r.stop_strings.push_back(v.get<std::string>());
    }
  } else {
    bad_param("stop", "'stop' must be a string or a list of strings");
  }
  for (const std::string& stop : r.stop_strings) {
    if (stop.empty()) bad_param("stop", "'stop' sequences must not be empty");
  }
}

// Options the engine does not implement are refused when they would change the output, so a
// client never silently gets something other than what it asked for.
void refuse_unsupported(const Json& body, Endpoint endpoint) {
  if (auto n = integer(body, "n"); n && *n != 1) {
    bad_param("n", "only n=1 is supported (one choice per request), got n=" + std::to_string(*n));
  }
  if (auto best_of = integer(body, "best_of"); best_of && *best_of != 1) bad_param("best_of", "only best_of=1 is supported");
  if (auto echo = boolean(body, "echo"); echo && *echo) bad_param("echo", "'echo' is not supported");
  if (const Json* lp = field(body, "logprobs"); lp && !(lp->is_boolean() && !lp->get<bool>())) {
    bad_param("logprobs", "'logprobs' is not supported");
  }
  if (endpoint == Endpoint::chat) {
    if (auto top = integer(body, "top_logprobs"); top && *top != 0) bad_param("top_logprobs", "'top_logprobs' is not supported");
  }
  for (const char* key : {"presence_penalty", "frequency_penalty"}) {
    if (auto x = number(body, key); x && *x != 0.0) bad_param(key, std::string("'") + key + "' is not supported (only 0)");
  }
  if (const Json* bias = field(body, "logit_bias"); bias && !(bias->is_object() && bias->empty())) {
    bad_param("logit_bias", "'logit_bias' is not supported");
  }
  if (auto suffix = string(body, "suffix"); suffix && !suffix->empty()) bad_param("suffix", "'suffix' is not supported");
}

void parse_sampling(const Json& body, ParsedRequest& r) {
  SamplingParams& s = r.generate.sampling;
  if (auto t = number(body, "temperature")) {
    if (*t < 0) bad_param("temperature", "'temperature' must be >= 0");
    s.temperature = *t;
  }
  if (auto p = number(body, "top_p")) {
    if (!(*p > 0.0 && *p <= 1.0)) bad_param("top_p", "'top_p' must be in (0, 1]");
    s.top_p = *p;
  }
  if (auto k = integer(body, "top_k")) {
    // -1 is how vLLM and others spell "off".
    if (*k < -1) bad_param("top_k", "'top_k' must be >= 0 (or -1 for off)");
    s.top_k = *k == -1 ? 0 : to_int32(*k, "top_k");
  }
  if (auto seed = integer(body, "seed")) s.seed = static_cast<std::uint64_t>(*seed);

  for (const char* key : {"max_completion_tokens", "max_tokens"}) {
    if (auto m = integer(body, key)) {
      if (*m < 1) bad_param(key, std::string("'") + key + "' must be >= 1");
      r.max_tokens = to_int32(*m, key);
      break;
    }
  }

  WedlmParams& w = r.generate.wedlm;
  if (auto window = integer(body, "wedlm_window")) {
    if (*window < 1 || *window > 1024) bad_param("wedlm_window", "'wedlm_window' must be in [1, 1024]");
    w.window = static_cast<std::int32_t>(*window);
  }
  if (auto tau = number(body, "wedlm_entropy_threshold")) {
    if (*tau < 0) bad_param("wedlm_entropy_threshold", "'wedlm_entropy_threshold' must be >= 0");
    w.entropy_threshold = *tau;
  }
  if (auto lambda = number(body, "wedlm_pos_penalty")) {
    if (*lambda < 0) bad_param("wedlm_pos_penalty", "'wedlm_pos_penalty' must be >= 0");
    w.position_penalty = *lambda;
  }
  if (auto mode = string(body, "mode")) {
    if (*mode == "wedlm") {
      r.generate.mode = DecodeMode::wedlm;
    } else if (*mode == "ar") {
      r.generate.mode = DecodeMode::ar;
    } else {
      bad_param("mode", "'mode' must be \"wedlm\" or \"ar\"");
    }
  }
  if (auto ignore = boolean(body, "ignore_eos")) r.generate.ignore_eos = *ignore;
  if (const Json* ids = field(body, "stop_token_ids")) {
    if (!ids->is_array()) bad_param("stop_token_ids", "'stop_token_ids' must be an array of token ids");
    r.generate.stop_ids = token_ids(*ids, "stop_token_ids");
  }
}

}  // namespace

ParsedRequest parse_request(std::string_view text, Endpoint endpoint) {
  Json body;
  try {
    body = Json::parse(text);
  } catch (const Json::parse_error& e) {
    throw ApiError(400, std::string("malformed JSON body: ") + e.what(), std::nullopt, "invalid_json");
  }
  if (!body.is_object()) throw ApiError(400, "the request body must be a JSON object", std::nullopt, "invalid_json");

  ParsedRequest r;
  r.endpoint = endpoint;
  if (auto model = string(body, "model")) r.model = *model;
  refuse_unsupported(body, endpoint);
  if (endpoint == Endpoint::completions) {
    parse_prompt(body, r);
  } else {
    parse_messages(body, r);
  }
  parse_sampling(body, r);
  parse_stop(body, r);
  if (auto stream = boolean(body, "stream")) r.stream = *stream;
  if (const Json* options = field(body, "stream_options")) {
    if (!options->is_object()) bad_param("stream_options", "'stream_options' must be an object");
    if (auto usage = boolean(*options, "include_usage")) r.include_usage = *usage;
  }
  if (auto ids = boolean(body, "return_token_ids")) r.return_token_ids = *ids;
  return r;
}

}  // namespace wedlm::server
