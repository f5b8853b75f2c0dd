#include "server/prompt_builder.h"

#include <algorithm>

#include "server/api_error.h"

namespace wedlm::server {

namespace {

std::vector<std::int32_t> prompt_ids(const ParsedRequest& r, const ServedModel& m) {
  if (r.endpoint == Endpoint::completions && !r.prompt_text) {
    for (std::int32_t id : r.prompt_ids) {
      if (id >= m.info.vocab_size) {
        bad_param("prompt", "token id " + std::to_string(id) + " is outside the vocabulary (size " +
                                std::to_string(m.info.vocab_size) + ")");
      }
    }
    return r.prompt_ids;
  }
  if (!m.tokenizer) {
    bad_param(r.endpoint == Endpoint::chat ? "messages" : "prompt",
              "this model has no tokenizer.json: send the prompt as an array of token ids to /v1/completions");
  }
  if (r.endpoint == Endpoint::completions) return m.tokenizer->encode(*r.prompt_text);
  if (!m.chat_template) bad_param("messages", "this model has no usable chat template: " + m.template_error);
  ChatTemplateOptions options;
  if (r.enable_thinking) options.enable_thinking = *r.enable_thinking;
  std::string text;
  try {
    text = m.chat_template->render(r.messages, r.tools, options);
  } catch (const Error& e) {
    bad_param("messages", e.what());
  }
  return m.tokenizer->encode(text);
}

}  // namespace

GenerateRequest build_generate_request(const ParsedRequest& r, const ServedModel& m) {
  for (std::int32_t id : r.generate.stop_ids) {
    if (id >= m.info.vocab_size) bad_param("stop_token_ids", "token id " + std::to_string(id) + " is outside the vocabulary");
  }
  if (!r.stop_strings.empty() && !m.tokenizer) bad_param("stop", "stop strings need a tokenizer; this model has none");
  GenerateRequest g = r.generate;
  g.prompt = prompt_ids(r, m);
  const auto prompt_length = static_cast<std::int64_t>(g.prompt.size());
  if (prompt_length == 0) bad_param(r.endpoint == Endpoint::chat ? "messages" : "prompt", "the prompt is empty");
  if (prompt_length >= m.info.context) {
    throw ApiError(400,
                   "the prompt has " + std::to_string(prompt_length) + " tokens; the context holds " +
                       std::to_string(m.info.context) + " (prompt + completion)",
                   r.endpoint == Endpoint::chat ? "messages" : "prompt", "context_length_exceeded");
  }
  // OpenAI's defaults: 16 tokens for completions, as much as fits for chat. The engine ends a
  // sequence with `length` when the context fills, so a larger value is not an error.
  g.max_tokens = r.max_tokens.value_or(r.endpoint == Endpoint::chat
                                           ? static_cast<std::int32_t>(m.info.context - prompt_length)
                                           : 16);
  if (!g.ignore_eos) {
    for (TokenId id : m.stop_ids) {
      if (std::find(g.stop_ids.begin(), g.stop_ids.end(), id) == g.stop_ids.end()) g.stop_ids.push_back(id);
    }
  }
  return g;
}

}  // namespace wedlm::server
