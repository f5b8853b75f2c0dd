#include "server/served_model.h"

#include <filesystem>

namespace wedlm::server {

ServedModel ServedModel::load(const ModelInfo& info, const std::string& model_argument, const std::string& served_name) {
  namespace fs = std::filesystem;
  ServedModel m;
  m.info = info;
  m.id = served_name.empty() ? model_argument : served_name;
  // "models/WeDLM-8B/" and "models/WeDLM-8B" both end in the name a client would type.
  fs::path normal = fs::path(info.directory).lexically_normal();
  if (!normal.has_filename()) normal = normal.parent_path();
  m.alias = normal.filename().string();
  const fs::path dir(info.directory);
  if (fs::exists(dir / "tokenizer.json")) m.tokenizer = Tokenizer::from_file(dir / "tokenizer.json");
  try {
    m.chat_template = ChatTemplate::from_model_dir(dir);
  } catch (const Error& e) {
    // Completions still work; chat requests get this message.
    m.template_error = e.what();
  }
  std::vector<TokenId> eos(info.eos_token_ids.begin(), info.eos_token_ids.end());
  m.stop_ids = m.tokenizer ? default_chat_stop_ids(*m.tokenizer, eos) : eos;
  return m;
}

}  // namespace wedlm::server
