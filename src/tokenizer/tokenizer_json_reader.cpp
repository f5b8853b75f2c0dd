#include "tokenizer/tokenizer_json_reader.h"

#include "util/error.h"

namespace wedlm::tokenizer {
namespace {

using nlohmann::json;

class Reader : public nlohmann::json_sax<json> {
 public:
  Reader(TokenizerJson& out, std::string_view origin) : out_(out), origin_(origin) {}

  bool null() override { return value(json()); }
  bool boolean(bool v) override { return value(json(v)); }
  bool number_integer(number_integer_t v) override {
    if (mode_ == Mode::vocab) return vocab_id(v);
    return value(json(v));
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (mode_ == Mode::vocab) return vocab_id(static_cast<std::int64_t>(std::min<number_unsigned_t>(v, INT64_MAX)));
    return value(json(v));
  }
  bool number_float(number_float_t v, const string_t&) override { return value(json(v)); }
  bool binary(binary_t&) override { return value(json()); }
  bool string(string_t& v) override {
    if (mode_ == Mode::merges) {
      const auto space = v.find(' ', 1);
      if (space == std::string::npos) fail("{}: model.merges entry \"{}\" is not \"left right\"", origin_, v);
      out_.merges.emplace_back(v.substr(0, space), v.substr(space + 1));
      return true;
    }
    if (mode_ == Mode::merge_pair) {
      pair_.push_back(std::move(v));
      return true;
    }
    return value(json(std::move(v)));
  }
  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }
  bool start_object(std::size_t) override {
    if (mode_ != Mode::dom) fail("{}: unexpected object inside model.{}", origin_, mode_ == Mode::vocab ? "vocab" : "merges");
    if (in_model() && key_ == "vocab") {
      mode_ = Mode::vocab;
      out_.has_vocab = true;
      return true;
    }
    return open(json::object());
  }
  bool end_object() override {
    if (mode_ == Mode::vocab) {
      mode_ = Mode::dom;
      return true;
    }
    stack_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override {
    if (mode_ == Mode::merges) {
      mode_ = Mode::merge_pair;
      pair_.clear();
      return true;
    }
    if (mode_ != Mode::dom) fail("{}: unexpected array inside model.{}", origin_, mode_ == Mode::vocab ? "vocab" : "merges");
    if (in_model() && key_ == "merges") {
      mode_ = Mode::merges;
      out_.has_merges = true;
      return true;
    }
    return open(json::array());
  }
  bool end_array() override {
    if (mode_ == Mode::merge_pair) {
      if (pair_.size() != 2) fail("{}: model.merges entry with {} strings (expected [left, right])", origin_, pair_.size());
      out_.merges.emplace_back(std::move(pair_[0]), std::move(pair_[1]));
      mode_ = Mode::merges;
      return true;
    }
    if (mode_ == Mode::merges) {
      mode_ = Mode::dom;
      return true;
    }
    stack_.pop_back();
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) override {
    fail("{}: not valid JSON (byte {}): {}", origin_, position, e.what());
  }

 private:
  enum class Mode { dom, vocab, merges, merge_pair };

  // True when the container being filled is the top-level "model" object.
  bool in_model() const { return stack_.size() == 2 && stack_.front()->is_object() && model_ == stack_.back(); }

  bool vocab_id(std::int64_t id) {
    if (id < 0 || id > INT32_MAX) fail("{}: model.vocab[\"{}\"] is not a valid token id", origin_, key_);
    out_.vocab.emplace_back(std::move(key_), static_cast<TokenId>(id));
    return true;
  }
  bool value(json v) {
    if (mode_ == Mode::vocab) fail("{}: model.vocab[\"{}\"] is not a token id", origin_, key_);
    if (mode_ != Mode::dom) fail("{}: model.merges holds a value that is not a string", origin_);
    place(std::move(v));
    return true;
  }
  json* place(json v) {
    if (stack_.empty()) {
      out_.document = std::move(v);
      return &out_.document;
    }
    json& parent = *stack_.back();
    if (parent.is_object()) return &(parent[key_] = std::move(v));
    parent.push_back(std::move(v));
    return &parent.back();
  }
  bool open(json container) {
    const bool is_model = stack_.size() == 1 && stack_.front()->is_object() && key_ == "model";
    json* node = place(std::move(container));
    if (is_model) model_ = node;
    stack_.push_back(node);
    return true;
  }

  TokenizerJson& out_;
  std::string_view origin_;
  std::vector<json*> stack_;
  json* model_ = nullptr;
  std::string key_;
  std::vector<std::string> pair_;
  Mode mode_ = Mode::dom;
};

}  // namespace

TokenizerJson read_tokenizer_json(std::string_view text, std::string_view origin) {
  TokenizerJson out;
  out.vocab.reserve(text.size() / 64);
  out.merges.reserve(text.size() / 64);
  Reader reader(out, origin);
  json::sax_parse(text.begin(), text.end(), &reader);
  return out;
}

}  // namespace wedlm::tokenizer
