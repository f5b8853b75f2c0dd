#pragma once
// What the HTTP front end knows about the model it serves: its names, its tokenizer and chat
// template when the directory has them, and the default stop tokens.
#include <optional>
#include <string>
#include <vector>

#include "wedlm/chat_template.h"
#include "wedlm/engine.h"
#include "wedlm/tokenizer.h"

namespace wedlm::server {

struct ServedModel {
  std::string id;     // the name clients use and /v1/models lists
  std::string alias;  // the model directory's basename, also accepted
  ModelInfo info;
  std::optional<Tokenizer> tokenizer;         // absent: prompts must be token ids
  std::optional<ChatTemplate> chat_template;  // absent: chat is refused with template_error
  std::string template_error;
  std::vector<TokenId> stop_ids;  // eos ids plus <|im_end|> / <|endoftext|> where the vocabulary has them

  // Loads the tokenizer and chat template next to the model (both optional).
  static ServedModel load(const ModelInfo& info, const std::string& model_argument, const std::string& served_name);
  bool accepts_name(const std::string& name) const { return name.empty() || name == id || name == alias; }
};

}  // namespace wedlm::server
