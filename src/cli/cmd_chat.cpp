// `wedlm chat`: an interactive multi-turn conversation over the same engine.
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/generation_options.h"
#include "engine/text_stream.h"
#include "util/error.h"
#include "wedlm/chat_template.h"

namespace wedlm::cli {

namespace {

struct ChatFlags {
  GenerationOptions options;
  ChatFlagValues chat;
};

void run(ChatFlags& f) {
  f.options.finalize();
  Engine engine(f.options.engine_options());
  const std::string dir = f.options.tokenizer_dir.empty() ? engine.info().directory : f.options.tokenizer_dir;
  std::optional<Tokenizer> tokenizer = load_tokenizer(engine.info().directory, f.options.tokenizer_dir);
  if (!tokenizer) fail("chat needs a tokenizer.json (in the model directory or --tokenizer DIR)");
  ChatTemplate chat_template = ChatTemplate::from_model_dir(dir);
  const ChatTemplateOptions template_options = f.chat.template_options();
  std::vector<TokenId> eos(engine.info().eos_token_ids.begin(), engine.info().eos_token_ids.end());
  std::vector<TokenId> chat_stops = default_chat_stop_ids(*tokenizer, eos);

  const bool interactive = ::isatty(STDIN_FILENO) == 1;
  nlohmann::ordered_json history = nlohmann::ordered_json::array();
  auto reset = [&] {
    history = nlohmann::ordered_json::array();
    if (!f.chat.system.empty()) history.push_back({{"role", "system"}, {"content", f.chat.system}});
  };
  reset();
  if (interactive) std::fprintf(stderr, "wedlm chat: /reset clears the conversation, /exit quits\n");
  std::string line;
  while (true) {
    if (interactive) std::fprintf(stderr, "> ");
    if (!std::getline(std::cin, line) || line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      reset();
      std::fprintf(stderr, "(conversation cleared)\n");
      continue;
    }
    if (line.empty()) continue;
    history.push_back({{"role", "user"}, {"content", line}});
    GenerateRequest request = f.options.request;
    request.prompt = tokenizer->encode(chat_template.render(history, nullptr, template_options));
    if (!request.ignore_eos) request.stop_ids.insert(request.stop_ids.end(), chat_stops.begin(), chat_stops.end());
    TextStream stream(*tokenizer, f.options.stop_strings);
    GenerateResult result;
    try {
      result = engine.generate(request, [&](std::span<const std::int32_t> ids) {
        std::string text = stream.push(ids);
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
        return !stream.stopped();
      });
    } catch (const Error& e) {
      // A turn that does not fit the context is reported; the conversation goes on without it.
      history.erase(history.end() - 1);
      std::fprintf(stderr, "error: %s\n", e.what());
      continue;
    }
    std::string rest = stream.finish();
    std::fwrite(rest.data(), 1, rest.size(), stdout);
    std::printf("\n");
    std::fflush(stdout);
    // The assistant turn as the template expects it: the text without the stop token.
    std::vector<std::int32_t> content_ids = result.output;
    if (!content_ids.empty() &&
        std::find(request.stop_ids.begin(), request.stop_ids.end(), content_ids.back()) != request.stop_ids.end()) {
      content_ids.pop_back();
    }
    history.push_back({{"role", "assistant"}, {"content", stream.stopped() ? stream.text() : tokenizer->decode(content_ids, true)}});
    std::fprintf(stderr, "[%lld tokens, %.2f tokens/forward, %.1f tokens/s]\n", static_cast<long long>(result.output.size()),
                 result.tokens_per_forward(),
                 result.decode_tokens_per_s());
  }
}

}  // namespace

void add_chat_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("chat", "Interactive multi-turn chat (/reset, /exit)");
  static ChatFlags flags;
  flags.options.add_to(*cmd);
  flags.chat.add_to(*cmd);
  cmd->callback([] { run(flags); });
}

}  // namespace wedlm::cli
