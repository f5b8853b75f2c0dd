// `wedlm tokenize | detokenize | template`: the tokenizer and chat template from the command line.
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "util/error.h"
#include "wedlm/chat_template.h"
#include "wedlm/tokenizer.h"

namespace wedlm::cli {
namespace {

namespace fs = std::filesystem;

Tokenizer load_tokenizer(const std::string& model_dir) {
  if (!fs::is_directory(model_dir)) fail("model directory {} does not exist", model_dir);
  const fs::path file = fs::path(model_dir) / "tokenizer.json";
  if (!fs::exists(file)) fail("{} has no tokenizer.json", model_dir);
  return Tokenizer::from_file(file);
}

std::string read_stdin() {
  std::ios::sync_with_stdio(false);
  std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  if (std::cin.bad()) fail("cannot read standard input");
  return text;
}

nlohmann::ordered_json read_json_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open {} file {}", what, path);
  try {
    return nlohmann::ordered_json::parse(in);
  } catch (const nlohmann::ordered_json::exception& e) {
    fail("{} file {}: not valid JSON: {}", what, path, e.what());
  }
}

std::vector<TokenId> parse_ids(const std::string& text, const Tokenizer& tokenizer, const std::string& model_dir) {
  std::vector<TokenId> ids;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t comma = std::min(text.find(',', pos), text.size());
    std::string_view item(text.data() + pos, comma - pos);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    TokenId id = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), id);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size())
      fail("--ids: '{}' is not a token id (expected a comma-separated list like 1,2,3)", item);
    if (!tokenizer.has_token(id)) fail("--ids: token id {} is not in the vocabulary of {}", id, model_dir);
    ids.push_back(id);
    pos = comma + 1;
  }
  return ids;
}

void write_stdout(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

}  // namespace

void add_tokenizer_commands(CLI::App& app) {
  {
    auto* cmd = app.add_subcommand("tokenize", "Print the token ids of a text as a JSON array");
    auto model = std::make_shared<std::string>();
    auto text = std::make_shared<std::string>();
    auto special = std::make_shared<bool>(true);
    cmd->add_option("--model", *model, "Model directory holding tokenizer.json")->required();
    auto* text_option = cmd->add_option("--text", *text, "Text to tokenize (default: standard input, verbatim)");
    cmd->add_option("--special", *special, "Recognise special tokens written in the text (true|false)")
        ->default_str("true");
    cmd->callback([=] {
      const Tokenizer tokenizer = load_tokenizer(*model);
      const std::string input = text_option->count() > 0 ? *text : read_stdin();
      const std::vector<TokenId> ids = tokenizer.encode(input, *special);
      write_stdout(fmt::format("[{}]\n", fmt::join(ids, ",")));
    });
  }
  {
    auto* cmd = app.add_subcommand("detokenize", "Print the text of a list of token ids");
    auto model = std::make_shared<std::string>();
    auto ids = std::make_shared<std::string>();
    auto skip_special = std::make_shared<bool>(false);
    cmd->add_option("--model", *model, "Model directory holding tokenizer.json")->required();
    cmd->add_option("--ids", *ids, "Comma-separated token ids, e.g. 1,2,3")->required();
    cmd->add_flag("--skip-special", *skip_special, "Leave special tokens out of the text");
    cmd->callback([=] {
      const Tokenizer tokenizer = load_tokenizer(*model);
      write_stdout(tokenizer.decode(parse_ids(*ids, tokenizer, *model), *skip_special));
    });
  }
  {
    auto* cmd = app.add_subcommand("template", "Print the chat prompt for an OpenAI-style messages array");
    auto model = std::make_shared<std::string>();
    auto messages = std::make_shared<std::string>();
    auto tools = std::make_shared<std::string>();
    auto no_generation_prompt = std::make_shared<bool>(false);
    auto enable_thinking = std::make_shared<bool>(true);
    cmd->add_option("--model", *model, "Model directory holding tokenizer_config.json")->required();
    cmd->add_option("--messages", *messages, "JSON file with the messages array")->required();
    cmd->add_option("--tools", *tools, "JSON file with the tools array");
    cmd->add_flag("--no-generation-prompt", *no_generation_prompt, "Do not open an assistant turn at the end");
    cmd->add_option("--enable-thinking", *enable_thinking, "false renders an empty <think> block (true|false)")
        ->default_str("true");
    cmd->callback([=] {
      if (!fs::is_directory(*model)) fail("model directory {} does not exist", *model);
      const ChatTemplate chat = ChatTemplate::from_model_dir(*model);
      const nlohmann::ordered_json conversation = read_json_file(*messages, "messages");
      const nlohmann::ordered_json tool_list = tools->empty() ? nlohmann::ordered_json() : read_json_file(*tools, "tools");
      ChatTemplateOptions options;
      options.add_generation_prompt = !*no_generation_prompt;
      options.enable_thinking = *enable_thinking;
      write_stdout(chat.render(conversation, tool_list, options));
    });
  }
}

}  // namespace wedlm::cli
