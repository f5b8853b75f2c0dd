#include "wedlm/chat_template.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "tokenizer/python_json.h"
#include "tokenizer/qwen3_chat_template.h"
#include "util/error.h"

namespace wedlm {

using nlohmann::ordered_json;
using tokenizer::python_json_dumps;

namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open {}", path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// ---- Python string methods the template calls ------------------------------------------------

std::string_view lstrip_newlines(std::string_view s) {
  while (!s.empty() && s.front() == '\n') s.remove_prefix(1);
  return s;
}
std::string_view rstrip_newlines(std::string_view s) {
  while (!s.empty() && s.back() == '\n') s.remove_suffix(1);
  return s;
}
std::string_view strip_newlines(std::string_view s) { return lstrip_newlines(rstrip_newlines(s)); }

// s.split(sep)[-1] and s.split(sep)[0]
std::string_view after_last(std::string_view s, std::string_view sep) {
  const auto at = s.rfind(sep);
  return at == std::string_view::npos ? s : s.substr(at + sep.size());
}
std::string_view before_first(std::string_view s, std::string_view sep) {
  return s.substr(0, std::min(s.find(sep), s.size()));
}

// ---- Access to the conversation --------------------------------------------------------------

const std::string& role_of(const ordered_json& messages, std::size_t i) {
  const ordered_json& message = messages[i];
  if (!message.is_object()) fail("messages[{}] is not an object", i);
  const auto it = message.find("role");
  if (it == message.end() || !it->is_string()) fail("messages[{}] has no string 'role'", i);
  return it->get_ref<const std::string&>();
}

std::string content_of(const ordered_json& messages, std::size_t i) {
  const ordered_json& message = messages[i];
  const auto it = message.find("content");
  if (it != message.end() && it->is_string()) return it->get<std::string>();
  if (role_of(messages, i) == "assistant" && (it == message.end() || it->is_null())) return {};
  if (it == message.end() || it->is_null()) fail("messages[{}] ({}) has no 'content'", i, role_of(messages, i));
  fail("messages[{}].content must be a string (content parts are not supported)", i);
}

bool truthy(const ordered_json& value) {
  if (value.is_null()) return false;
  if (value.is_boolean()) return value.get<bool>();
  if (value.is_string() || value.is_array() || value.is_object()) return !value.empty();
  if (value.is_number_integer()) return value.get<std::int64_t>() != 0;
  if (value.is_number()) return value.get<double>() != 0.0;
  return true;
}

// ---- The Qwen3 template, rendered natively ---------------------------------------------------

constexpr std::string_view kToolsHeader =
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>";
constexpr std::string_view kToolsFooter =
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
    "<args-json-object>}\n</tool_call><|im_end|>\n";

void render_qwen3_tool_calls(const ordered_json& calls, std::size_t message_index, bool has_content, std::string& out) {
  if (!calls.is_array()) fail("messages[{}].tool_calls must be an array", message_index);
  for (std::size_t j = 0; j < calls.size(); ++j) {
    if (j > 0 || has_content) out += '\n';
    const ordered_json* call = &calls[j];
    if (!call->is_object()) fail("messages[{}].tool_calls[{}] is not an object", message_index, j);
    if (const auto fn = call->find("function"); fn != call->end() && truthy(*fn)) call = &*fn;
    const auto name = call->find("name");
    if (name == call->end() || !name->is_string())
      fail("messages[{}].tool_calls[{}] has no string function name", message_index, j);
    const auto arguments = call->find("arguments");
    if (arguments == call->end()) fail("messages[{}].tool_calls[{}] has no 'arguments'", message_index, j);
    out += "<tool_call>\n{\"name\": \"";
    out += name->get_ref<const std::string&>();
    out += "\", \"arguments\": ";
    out += arguments->is_string() ? arguments->get<std::string>() : python_json_dumps(*arguments);
    out += "}\n</tool_call>";
  }
}

std::string render_qwen3(const ordered_json& messages, const ordered_json& tools, const ChatTemplateOptions& options) {
  const std::size_t n = messages.size();
  std::string out;
  const bool first_is_system = role_of(messages, 0) == "system";
  if (truthy(tools)) {
    out += "<|im_start|>system\n";
    if (first_is_system) out += content_of(messages, 0) + "\n\n";
    out += kToolsHeader;
    for (const ordered_json& tool : tools) {
      out += '\n';
      out += python_json_dumps(tool);
    }
    out += kToolsFooter;
  } else if (first_is_system) {
    out += "<|im_start|>system\n" + content_of(messages, 0) + "<|im_end|>\n";
  }

  // The last user turn that is a real query (not a wrapped tool response): assistant turns after
  // it keep their reasoning in the prompt, earlier ones lose it.
  std::size_t last_query = n - 1;
  for (std::size_t k = n; k-- > 0;) {
    if (role_of(messages, k) != "user") continue;
    const std::string content = content_of(messages, k);
    if (!(content.starts_with("<tool_response>") && content.ends_with("</tool_response>"))) {
      last_query = k;
      break;
    }
  }

  for (std::size_t i = 0; i < n; ++i) {
    const std::string& role = role_of(messages, i);
    if (role == "user" || (role == "system" && i != 0)) {
      out += "<|im_start|>" + role + "\n" + content_of(messages, i) + "<|im_end|>\n";
    } else if (role == "assistant") {
      const ordered_json& message = messages[i];
      const std::string full = content_of(messages, i);
      std::string_view content = full;
      std::string_view reasoning;
      const auto given = message.find("reasoning_content");
      if (given != message.end() && !given->is_null()) {
        if (!given->is_string()) fail("messages[{}].reasoning_content must be a string", i);
        reasoning = given->get_ref<const std::string&>();
      } else if (full.find("</think>") != std::string::npos) {
        content = lstrip_newlines(after_last(full, "</think>"));
        reasoning = lstrip_newlines(after_last(rstrip_newlines(before_first(full, "</think>")), "<think>"));
      }
      out += "<|im_start|>assistant\n";
      if (i > last_query && (i == n - 1 || !reasoning.empty())) {
        out += "<think>\n";
        out += strip_newlines(reasoning);
        out += "\n</think>\n\n";
        out += lstrip_newlines(content);
      } else {
        out += content;
      }
      if (const auto calls = message.find("tool_calls"); calls != message.end() && truthy(*calls))
        render_qwen3_tool_calls(*calls, i, !content.empty(), out);
      out += "<|im_end|>\n";
    } else if (role == "tool") {
      if (i == 0 || role_of(messages, i - 1) != "tool") out += "<|im_start|>user";
      out += "\n<tool_response>\n" + content_of(messages, i) + "\n</tool_response>";
      if (i == n - 1 || role_of(messages, i + 1) != "tool") out += "<|im_end|>\n";
    }
    // The template renders nothing for any other role.
  }
  if (options.add_generation_prompt) {
    out += "<|im_start|>assistant\n";
    if (!options.enable_thinking) out += "<think>\n\n</think>\n\n";
  }
  return out;
}

}  // namespace

ChatTemplate ChatTemplate::from_text(std::string_view template_text, std::string_view origin) {
  if (template_text == tokenizer::kQwen3ChatTemplate) return ChatTemplate("qwen3");
  fail("{}: unrecognised chat template; wedlm renders only templates it knows exactly (Qwen3) and will not guess",
       origin);
}

ChatTemplate ChatTemplate::from_tokenizer_config(const std::filesystem::path& tokenizer_config_json) {
  const std::string origin = tokenizer_config_json.string();
  ordered_json config;
  try {
    config = ordered_json::parse(read_file(tokenizer_config_json));
  } catch (const ordered_json::exception& e) {
    fail("{}: not valid JSON: {}", origin, e.what());
  }
  const auto it = config.is_object() ? config.find("chat_template") : config.end();
  if (it == config.end() || it->is_null()) fail("{}: no 'chat_template'", origin);
  if (it->is_string()) return from_text(it->get_ref<const std::string&>(), origin + " chat_template");
  if (it->is_array()) {
    for (const ordered_json& entry : *it)
      if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template") &&
          entry["template"].is_string())
        return from_text(entry["template"].get_ref<const std::string&>(), origin + " chat_template[default]");
    fail("{}: chat_template is a list without an entry named \"default\"", origin);
  }
  fail("{}: chat_template must be a string or a list of named templates", origin);
}

ChatTemplate ChatTemplate::from_model_dir(const std::filesystem::path& dir) {
  const auto jinja = dir / "chat_template.jinja";
  if (std::filesystem::exists(jinja)) return from_text(read_file(jinja), jinja.string());
  return from_tokenizer_config(dir / "tokenizer_config.json");
}

std::string ChatTemplate::render(const ordered_json& messages, const ordered_json& tools,
                                 const ChatTemplateOptions& options) const {
  if (!messages.is_array() || messages.empty()) fail("messages must be a non-empty array");
  if (!tools.is_null() && !tools.is_array()) fail("tools must be an array");
  return render_qwen3(messages, tools, options);
}

std::vector<TokenId> default_chat_stop_ids(const Tokenizer& tokenizer, std::span<const TokenId> eos_ids) {
  std::vector<TokenId> ids;
  auto add = [&](TokenId id) {
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  };
  for (TokenId id : eos_ids) add(id);
  for (const char* token : {"<|im_end|>", "<|endoftext|>"})
    if (const auto id = tokenizer.token_to_id(token)) add(*id);
  return ids;
}

}  // namespace wedlm
