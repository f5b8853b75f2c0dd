#include "cli/generation_options.h"

#include <filesystem>

#include "model/checkpoint.h"
#include "util/error.h"

namespace wedlm::cli {

void GenerationOptions::add_to(CLI::App& cmd) {
  cmd.add_option("-m,--model", model, "Model directory or Hugging Face id")->required();
  cmd.add_option("--tokenizer", tokenizer_dir, "Folder with tokenizer.json (default: the model's)");
  cmd.add_option("--device", device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  cmd.add_option("--context", context, "KV cache slots per sequence: prompt + output")->check(CLI::Range(1, 1 << 22));
  cmd.add_option("--mode", mode, "wedlm (parallel decoding) or ar (token by token)")
      ->check(CLI::IsMember({"wedlm", "ar"}));
  cmd.add_flag("--autoregressive", autoregressive, "Same as --mode ar");
  cmd.add_option("--window", request.wedlm.window, "WeDLM window size (slots)")->check(CLI::Range(1, 1024));
  cmd.add_option("--entropy-threshold", request.wedlm.entropy_threshold, "Fill masks whose adjusted entropy is below")
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--pos-penalty", request.wedlm.position_penalty, "Entropy penalty per slot of distance")
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--temperature", request.sampling.temperature, "0 = greedy")->check(CLI::NonNegativeNumber);
  cmd.add_option("--top-k", request.sampling.top_k, "0 = off")->check(CLI::NonNegativeNumber);
  cmd.add_option("--top-p", request.sampling.top_p, "In (0, 1]; 1 = off");
  cmd.add_option("--seed", request.sampling.seed, "Sampling seed");
  cmd.add_option("--max-tokens", request.max_tokens, "Completion tokens at most")->check(CLI::PositiveNumber);
  cmd.add_option("--stop-id", stop_ids, "Stop at this token id (kept in the output); repeatable");
  cmd.add_option("--stop", stop_strings, "Stop before this text; repeatable");
  cmd.add_flag("--ignore-eos", ignore_eos, "Do not stop at the model's end-of-sequence tokens");
}

void GenerationOptions::finalize() {
  if (autoregressive) mode = "ar";
  request.mode = mode == "ar" ? DecodeMode::ar : DecodeMode::wedlm;
  if (!(request.sampling.top_p > 0.0 && request.sampling.top_p <= 1.0)) {
    fail("--top-p must be in (0, 1], got {}", request.sampling.top_p);
  }
  for (const std::string& s : stop_strings) {
    if (s.empty()) fail("--stop: the stop text must not be empty");
  }
  request.stop_ids = stop_ids;
  request.ignore_eos = ignore_eos;
}

void ChatFlagValues::add_to(CLI::App& cmd) {
  cmd.add_option("--system", system, "System message of the conversation");
  cmd.add_option("--enable-thinking", enable_thinking, "Chat template thinking switch: true or false")
      ->check(CLI::IsMember({"true", "false", "default"}));
}

ChatTemplateOptions ChatFlagValues::template_options() const {
  ChatTemplateOptions options;
  if (enable_thinking != "default") options.enable_thinking = enable_thinking == "true";
  return options;
}

EngineOptions GenerationOptions::engine_options() const {
  return EngineOptions{model, device, context, true};
}

std::optional<Tokenizer> load_tokenizer(const std::string& model_dir, const std::string& tokenizer_dir) {
  namespace fs = std::filesystem;
  fs::path dir = tokenizer_dir.empty() ? fs::path(model_dir) : fs::path(tokenizer_dir);
  fs::path file = dir / "tokenizer.json";
  if (!fs::exists(file)) {
    if (!tokenizer_dir.empty()) fail("--tokenizer {}: tokenizer.json is missing", tokenizer_dir);
    return std::nullopt;
  }
  return Tokenizer::from_file(file);
}

}  // namespace wedlm::cli
