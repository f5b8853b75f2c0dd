#include "wedlm/tokenizer.h"

#include <algorithm>
#include <fstream>
#include <optional>

#include <nlohmann/json.hpp>

#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/split_regex.h"
#include "tokenizer/tokenizer_json_reader.h"
#include "tokenizer/unicode_props.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace wedlm {

using nlohmann::json;
using namespace tokenizer;

namespace {

// The pre-tokenizer regex GPT-2 style ByteLevel uses when `use_regex` is true.
constexpr std::string_view kGpt2SplitPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

std::string type_of(const json& node) {
  if (!node.is_object() || !node.contains("type") || !node["type"].is_string()) return "<no type>";
  return node["type"].get<std::string>();
}

bool flag(const json& node, const char* key, bool fallback) {
  const auto it = node.find(key);
  if (it == node.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) fail("'{}' must be true or false", key);
  return it->get<bool>();
}

bool empty_or_null_string(const json& node, const char* key) {
  const auto it = node.find(key);
  return it == node.end() || it->is_null() || (it->is_string() && it->get_ref<const std::string&>().empty());
}

}  // namespace

struct Tokenizer::Impl {
  std::vector<AddedToken> added;
  AddedTokenMatcher raw_matcher{{}, false};
  AddedTokenMatcher normalized_matcher{{}, true};
  bool nfc = false;
  std::optional<SplitRegex> split;
  bool add_prefix_space = false;
  std::optional<BpeModel> model;

  enum class Kind : std::uint8_t { none, vocabulary, added, special };
  std::vector<std::string> token_bytes;  // by id, what decoding emits
  std::vector<Kind> kind;                // by id

  void load_normalizer(const json& node);
  void load_pre_tokenizer(const json& node, std::string_view origin);
  void check_decoder(const json& node);
  void encode_plain(std::string_view text, std::vector<TokenId>& out, std::vector<std::string_view>& pieces) const;
};

void Tokenizer::Impl::load_normalizer(const json& node) {
  if (node.is_null()) return;
  const std::string type = type_of(node);
  if (type == "NFC") {
    nfc = true;
  } else if (type == "Sequence" && node.contains("normalizers") && node["normalizers"].is_array()) {
    for (const json& child : node["normalizers"]) load_normalizer(child);
  } else {
    fail("normalizer '{}' is not supported (supported: NFC)", type);
  }
}

void Tokenizer::Impl::load_pre_tokenizer(const json& node, std::string_view origin) {
  const std::string type = type_of(node);
  std::vector<json> steps;
  if (type == "Sequence" && node.contains("pretokenizers") && node["pretokenizers"].is_array()) {
    steps.assign(node["pretokenizers"].begin(), node["pretokenizers"].end());
  } else {
    steps.push_back(node);
  }
  bool byte_level = false;
  for (const json& step : steps) {
    const std::string step_type = type_of(step);
    if (step_type == "Split" && !split && !byte_level) {
      if (!step.contains("pattern") || !step["pattern"].is_object()) fail("Split pre-tokenizer has no 'pattern'");
      const json& pattern = step["pattern"];
      std::string regex;
      if (pattern.contains("Regex") && pattern["Regex"].is_string()) {
        regex = pattern["Regex"].get<std::string>();
      } else if (pattern.contains("String") && pattern["String"].is_string()) {
        regex = "\\Q" + pattern["String"].get<std::string>() + "\\E";
      } else {
        fail("Split pre-tokenizer 'pattern' must hold 'Regex' or 'String'");
      }
      if (step.value("behavior", std::string()) != "Isolated")
        fail("Split pre-tokenizer behavior '{}' is not supported (supported: Isolated)", step.value("behavior", std::string()));
      if (flag(step, "invert", false)) fail("Split pre-tokenizer with invert=true is not supported");
      split.emplace(regex, fmt::format("{}: pre_tokenizer Split pattern", origin));
    } else if (step_type == "ByteLevel" && !byte_level) {
      byte_level = true;
      add_prefix_space = flag(step, "add_prefix_space", true);
      if (flag(step, "use_regex", true)) {
        if (split) fail("ByteLevel pre-tokenizer with use_regex=true after a Split is not supported");
        split.emplace(kGpt2SplitPattern, fmt::format("{}: ByteLevel pre-tokenizer regex", origin));
      }
    } else {
      fail("pre-tokenizer '{}' is not supported here (supported: Split with a regex, then ByteLevel)", step_type);
    }
  }
  if (!byte_level) fail("the pre-tokenizer has no ByteLevel step: only byte-level BPE tokenizers are supported");
}

void Tokenizer::Impl::check_decoder(const json& node) {
  if (type_of(node) != "ByteLevel")
    fail("decoder '{}' is not supported (supported: ByteLevel)", type_of(node));
}

void Tokenizer::Impl::encode_plain(std::string_view text, std::vector<TokenId>& out,
                                   std::vector<std::string_view>& pieces) const {
  std::string prefixed;
  if (add_prefix_space && !text.empty() && text.front() != ' ') {
    prefixed = " ";
    prefixed.append(text);
    text = prefixed;
  }
  pieces.clear();
  if (split) {
    split->split(text, pieces);
  } else {
    pieces.push_back(text);
  }
  for (std::string_view piece : pieces) model->encode_piece(piece, out);
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_file(const std::filesystem::path& tokenizer_json) {
  std::ifstream in(tokenizer_json, std::ios::binary);
  if (!in) fail("cannot open tokenizer file {}", tokenizer_json.string());
  std::string text;
  in.seekg(0, std::ios::end);
  text.resize(static_cast<std::size_t>(in.tellg()));
  in.seekg(0);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (!in) fail("cannot read tokenizer file {}", tokenizer_json.string());
  return from_json(text, tokenizer_json.string());
}

Tokenizer Tokenizer::from_json(std::string_view tokenizer_json_text, std::string_view origin) {
  auto impl = std::make_unique<Impl>();
  try {
    TokenizerJson parsed = read_tokenizer_json(tokenizer_json_text, origin);
    const json& root = parsed.document;
    if (!root.is_object() || !root.contains("model") || !root["model"].is_object())
      fail("no 'model' object: not a Hugging Face tokenizer.json");
    const json& model = root["model"];
    const std::string model_type = type_of(model);
    if (model_type != "BPE")
      fail("tokenizer model type '{}' is not supported: wedlm supports byte-level BPE tokenizers (Qwen2/Qwen3 family)",
           model_type);
    if (flag(model, "byte_fallback", false)) fail("BPE with byte_fallback (SentencePiece style) is not supported");
    if (!empty_or_null_string(model, "continuing_subword_prefix") || !empty_or_null_string(model, "end_of_word_suffix"))
      fail("BPE with continuing_subword_prefix or end_of_word_suffix is not supported");
    if (model.contains("dropout") && !model["dropout"].is_null() && model["dropout"].get<double>() != 0.0)
      fail("BPE with dropout is not supported");

    impl->load_normalizer(root.value("normalizer", json()));
    if (!root.contains("pre_tokenizer") || root["pre_tokenizer"].is_null())
      fail("no pre_tokenizer: only byte-level BPE tokenizers are supported");
    impl->load_pre_tokenizer(root["pre_tokenizer"], origin);
    impl->check_decoder(root.value("decoder", json()));

    if (!parsed.has_vocab) fail("model.vocab must be an object");
    if (!parsed.has_merges) fail("model.merges must be an array");
    TokenId max_id = -1;
    for (const auto& entry : parsed.vocab) max_id = std::max(max_id, entry.second);

    if (root.contains("added_tokens") && !root["added_tokens"].is_null()) {
      if (!root["added_tokens"].is_array()) fail("added_tokens must be an array");
      for (const json& entry : root["added_tokens"]) {
        if (!entry.is_object() || !entry.contains("id") || !entry["id"].is_number_integer() ||
            !entry.contains("content") || !entry["content"].is_string())
          fail("added_tokens entry {} lacks an integer 'id' or a string 'content'", entry.dump());
        AddedToken token{entry["content"].get<std::string>(), entry["id"].get<TokenId>(), flag(entry, "special", false),
                         flag(entry, "lstrip", false), flag(entry, "rstrip", false), flag(entry, "single_word", false),
                         flag(entry, "normalized", !flag(entry, "special", false))};
        if (token.id < 0) fail("added token \"{}\" has a negative id", token.content);
        max_id = std::max(max_id, token.id);
        impl->added.push_back(std::move(token));
      }
    }

    impl->model.emplace(std::move(parsed.vocab), parsed.merges, flag(model, "ignore_merges", false), origin);
    const auto size = static_cast<std::size_t>(max_id + 1);
    impl->token_bytes.resize(size);
    impl->kind.assign(size, Impl::Kind::none);
    const ByteLevelMap& byte_map = byte_level_map();
    const std::vector<std::string>& tokens = impl->model->tokens();
    for (std::size_t id = 0; id < tokens.size(); ++id) {
      if (tokens[id].empty()) continue;
      impl->token_bytes[id] = byte_map.decode_token(tokens[id]);
      impl->kind[id] = Impl::Kind::vocabulary;
    }
    // Added tokens take precedence over a vocabulary entry with the same id, as in the reference.
    for (const AddedToken& token : impl->added) {
      impl->token_bytes[token.id] = byte_map.decode_token(token.content);
      impl->kind[token.id] = token.special ? Impl::Kind::special : Impl::Kind::added;
    }
    impl->raw_matcher = AddedTokenMatcher(impl->added, false);
    impl->normalized_matcher = AddedTokenMatcher(impl->added, true);
  } catch (const json::exception& e) {
    fail("{}: unexpected value: {}", origin, e.what());
  } catch (const Error& e) {
    if (std::string_view(e.what()).starts_with(origin)) throw;
    fail("{}: {}", origin, e.what());
  }
  return Tokenizer(std::move(impl));
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, bool parse_special) const {
  const std::size_t valid = valid_utf8_prefix(text);
  if (valid != text.size()) fail("cannot tokenize: the text is not valid UTF-8 (at byte {})", valid);
  std::vector<TokenId> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<Segment> raw_segments, normalized_segments;
  std::vector<std::string_view> pieces;
  impl_->raw_matcher.split(text, parse_special, raw_segments);
  for (const Segment& raw : raw_segments) {
    if (raw.id >= 0) {
      ids.push_back(raw.id);
      continue;
    }
    const std::string normalized = impl_->nfc ? nfc(raw.text) : std::string(raw.text);
    normalized_segments.clear();
    impl_->normalized_matcher.split(normalized, parse_special, normalized_segments);
    for (const Segment& segment : normalized_segments) {
      if (segment.id >= 0) {
        ids.push_back(segment.id);
      } else {
        impl_->encode_plain(segment.text, ids, pieces);
      }
    }
  }
  return ids;
}

std::string Tokenizer::decode(std::span<const TokenId> ids, bool skip_special) const {
  std::string bytes;
  for (TokenId id : ids) {
    if (!has_token(id)) continue;
    if (skip_special && impl_->kind[id] == Impl::Kind::special) continue;
    bytes += impl_->token_bytes[id];
  }
  std::string text;
  text.reserve(bytes.size());
  append_utf8_lossy(bytes, text, true);
  return text;
}

bool Tokenizer::has_token(TokenId id) const {
  return id >= 0 && static_cast<std::size_t>(id) < impl_->kind.size() && impl_->kind[id] != Impl::Kind::none;
}

std::size_t Tokenizer::vocab_size() const { return impl_->kind.size(); }

std::optional<TokenId> Tokenizer::token_to_id(std::string_view token) const {
  for (const AddedToken& added : impl_->added)
    if (added.content == token) return added.id;
  return impl_->model->find(token);
}

const std::string& Tokenizer::id_to_token(TokenId id) const {
  if (!has_token(id)) fail("token id {} is not in the vocabulary (size {})", id, vocab_size());
  if (impl_->kind[id] == Impl::Kind::vocabulary) return impl_->model->tokens()[static_cast<std::size_t>(id)];
  for (const AddedToken& token : impl_->added)
    if (token.id == id) return token.content;
  fail("token id {} has no text", id);
}

const std::string& Tokenizer::token_bytes(TokenId id) const {
  static const std::string none;
  return has_token(id) ? impl_->token_bytes[id] : none;
}

bool Tokenizer::is_special(TokenId id) const { return has_token(id) && impl_->kind[id] == Impl::Kind::special; }

}  // namespace wedlm
