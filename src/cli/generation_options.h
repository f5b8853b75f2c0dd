#pragma once
// Flags shared by `generate`, `chat` and `bench --mode`: model, device, decoding and sampling.
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "wedlm/chat_template.h"
#include "wedlm/engine.h"
#include "wedlm/tokenizer.h"

namespace wedlm::cli {

struct GenerationOptions {
  std::string model;
  std::string tokenizer_dir;  // default: the model directory
  std::string device = "cpu";
  std::int64_t context = 4096;
  std::string mode = "wedlm";
  bool autoregressive = false;
  GenerateRequest request;  // decoding parameters (prompt filled later)
  std::vector<std::int32_t> stop_ids;
  std::vector<std::string> stop_strings;
  bool ignore_eos = false;

  void add_to(CLI::App& cmd);
  // Checks the values CLI11 cannot (mode, ranges tied to each other) and fills `request`.
  void finalize();
  EngineOptions engine_options() const;
};

// The chat flags of `generate --chat` and `chat`: system message and the template's thinking switch.
struct ChatFlagValues {
  std::string system;
  std::string enable_thinking = "default";  // true | false | default (the template's own default)

  void add_to(CLI::App& cmd);
  ChatTemplateOptions template_options() const;
};

// The tokenizer of a model (tokenizer.json in `tokenizer_dir`, or the model's directory), or
// nothing when the folder has none.
std::optional<Tokenizer> load_tokenizer(const std::string& model_dir, const std::string& tokenizer_dir);

}  // namespace wedlm::cli
