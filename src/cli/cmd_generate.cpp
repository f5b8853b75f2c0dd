// `wedlm generate`: one completion, streamed to stdout (or one JSON object with --json).
#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/generation_options.h"
#include "cli/parse.h"
#include "engine/text_stream.h"
#include "util/error.h"
#include "wedlm/chat_template.h"

namespace wedlm::cli {

namespace {

struct GenerateFlags {
  GenerationOptions options;
  std::string prompt, prompt_ids;
  ChatFlagValues chat_flags;
  bool chat = false, as_json = false;
};

std::vector<std::int32_t> prompt_tokens(const GenerateFlags& f, const std::optional<Tokenizer>& tokenizer,
                                        const std::string& template_dir) {
  if (!f.prompt_ids.empty()) return parse_id_list(f.prompt_ids, "--prompt-ids");
  if (!tokenizer) {
    fail("the model has no tokenizer.json; pass --prompt-ids, or --tokenizer DIR with a tokenizer.json");
  }
  if (!f.chat) return tokenizer->encode(f.prompt);
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  if (!f.chat_flags.system.empty()) messages.push_back({{"role", "system"}, {"content", f.chat_flags.system}});
  messages.push_back({{"role", "user"}, {"content", f.prompt}});
  const ChatTemplateOptions options = f.chat_flags.template_options();
  std::string text = ChatTemplate::from_model_dir(template_dir).render(messages, nullptr, options);
  return tokenizer->encode(text);
}

void run(GenerateFlags& f) {
  f.options.finalize();
  if (f.prompt.empty() == f.prompt_ids.empty()) fail("give exactly one of --prompt and --prompt-ids");
  if (f.chat && f.prompt.empty()) fail("--chat needs --prompt");
  Engine engine(f.options.engine_options());
  const std::string tokenizer_dir = f.options.tokenizer_dir.empty() ? engine.info().directory : f.options.tokenizer_dir;
  std::optional<Tokenizer> tokenizer = load_tokenizer(engine.info().directory, f.options.tokenizer_dir);
  if (!f.options.stop_strings.empty() && !tokenizer) fail("--stop needs a tokenizer (tokenizer.json)");

  GenerateRequest request = f.options.request;
  request.prompt = prompt_tokens(f, tokenizer, tokenizer_dir);
  if (tokenizer && !request.ignore_eos) {
    std::vector<TokenId> eos(engine.info().eos_token_ids.begin(), engine.info().eos_token_ids.end());
    for (TokenId id : default_chat_stop_ids(*tokenizer, eos)) request.stop_ids.push_back(id);
  }

  std::optional<TextStream> stream;
  if (tokenizer) stream.emplace(*tokenizer, f.options.stop_strings);
  GenerateResult result = engine.generate(request, [&](std::span<const std::int32_t> ids) {
    if (!stream) return true;
    std::string text = stream->push(ids);
    if (!f.as_json) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    }
    return !stream->stopped();
  });
  if (stream) {
    std::string rest = stream->finish();
    if (!f.as_json) std::fwrite(rest.data(), 1, rest.size(), stdout);
  }
  const FinishReason finish = stream && stream->stopped() ? FinishReason::stop : result.finish_reason;
  const double decode_tps = result.decode_tokens_per_s();
  if (f.as_json) {
    nlohmann::json out = {{"output_ids", result.output},
                          {"finish_reason", to_string(finish)},
                          {"prompt_tokens", result.prompt_tokens},
                          {"completion_tokens", result.output.size()},
                          {"forwards", result.forwards},
                          {"tokens_per_forward", result.tokens_per_forward()},
                          {"prefill_ms", result.prefill_ms},
                          {"decode_ms", result.decode_ms},
                          {"decode_tokens_per_s", decode_tps}};
    if (stream) out["text"] = stream->text();
    std::printf("%s\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    if (!tokenizer) {
      for (std::size_t i = 0; i < result.output.size(); ++i) std::printf("%s%d", i ? "," : "", result.output[i]);
    }
    std::printf("\n");
    std::fprintf(stderr,
                 "[%s] prompt %lld tokens, completion %zu tokens (%s), %lld forwards, %.2f tokens/forward, "
                 "prefill %.0f ms, decode %.0f ms = %.1f tokens/s\n",
                 f.options.mode.c_str(), static_cast<long long>(result.prompt_tokens), result.output.size(),
                 to_string(finish), static_cast<long long>(result.forwards), result.tokens_per_forward(),
                 result.prefill_ms, result.decode_ms, decode_tps);
  }
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "Generate a completion (WeDLM parallel decoding or token by token)");
  static GenerateFlags flags;
  flags.options.add_to(*cmd);
  cmd->add_option("-p,--prompt", flags.prompt, "Prompt text");
  cmd->add_option("--prompt-ids", flags.prompt_ids, "Prompt as comma-separated token ids");
  cmd->add_flag("--chat", flags.chat, "Wrap the prompt in the model's chat template as a user message");
  flags.chat_flags.add_to(*cmd);
  cmd->add_flag("--json", flags.as_json, "Print one JSON object instead of streaming text");
  cmd->callback([] { run(flags); });
}

}  // namespace wedlm::cli
