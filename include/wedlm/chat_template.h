#pragma once
// Renders OpenAI-style conversations into a prompt exactly as Hugging Face's
// apply_chat_template renders the model's Jinja chat template. Templates are recognised and
// formatted natively; an unknown template is refused rather than approximated.
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "wedlm/tokenizer.h"

namespace wedlm {

struct ChatTemplateOptions {
  bool add_generation_prompt = true;
  // false renders the empty <think></think> block Qwen3 uses to switch reasoning off.
  bool enable_thinking = true;
};

class ChatTemplate {
 public:
  // The template of a model directory: chat_template.jinja if present, else the
  // `chat_template` of tokenizer_config.json (a string, or a list holding one named "default").
  static ChatTemplate from_model_dir(const std::filesystem::path& dir);
  static ChatTemplate from_tokenizer_config(const std::filesystem::path& tokenizer_config_json);
  // `origin` names the source in error messages.
  static ChatTemplate from_text(std::string_view template_text, std::string_view origin);

  // `messages`: array of {role, content, [reasoning_content], [tool_calls]}; `tools`: null or an
  // array of tool definitions (key order is kept: it shows in the prompt). Throws wedlm::Error on
  // a malformed conversation. An assistant message whose content is null is rendered as if empty.
  std::string render(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                     const ChatTemplateOptions& options) const;

  // Which known template this is, e.g. "qwen3".
  std::string_view family() const { return family_; }

 private:
  explicit ChatTemplate(std::string_view family) : family_(family) {}
  std::string_view family_;
};

// Stop tokens for chat generation: the model's eos ids (from generation_config.json or
// config.json, passed by the caller) plus <|im_end|> and <|endoftext|> where the vocabulary has
// them; no duplicates, in that order.
std::vector<TokenId> default_chat_stop_ids(const Tokenizer& tokenizer, std::span<const TokenId> eos_ids);

}  // namespace wedlm
