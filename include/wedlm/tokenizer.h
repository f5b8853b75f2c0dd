#pragma once
// Byte-level BPE tokenizer read from a Hugging Face `tokenizer.json` (the Qwen2/Qwen3 family).
// Encoding and decoding reproduce the `tokenizers` library: NFC normalization, the Split
// pre-tokenizer regex, ByteLevel byte mapping, BPE merges by rank, and added tokens matched in the
// raw text first. Other tokenizer types (SentencePiece, Unigram, WordPiece) are refused on load.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wedlm {

using TokenId = std::int32_t;

class Tokenizer {
 public:
  // Throws wedlm::Error naming the file and the field when the file is missing, malformed, or of
  // an unsupported type.
  static Tokenizer from_file(const std::filesystem::path& tokenizer_json);
  // `origin` names the source in error messages.
  static Tokenizer from_json(std::string_view tokenizer_json_text, std::string_view origin);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // `text` must be valid UTF-8. With `parse_special` false, added tokens marked special are not
  // recognised in the text and are tokenized as plain text (HF `split_special_tokens=True`);
  // non-special added tokens are still recognised, as in HF.
  std::vector<TokenId> encode(std::string_view text, bool parse_special = true) const;

  // Ids without a token (e.g. unused rows of a padded embedding) are skipped, as HF does; use
  // has_token() to reject them first where that matters. Invalid UTF-8 produced by a partial
  // byte sequence becomes U+FFFD.
  std::string decode(std::span<const TokenId> ids, bool skip_special = false) const;

  bool has_token(TokenId id) const;
  // One past the largest id with a token.
  std::size_t vocab_size() const;
  std::optional<TokenId> token_to_id(std::string_view token) const;
  // The token as stored in tokenizer.json (byte-level characters for vocabulary tokens).
  const std::string& id_to_token(TokenId id) const;
  // The bytes this token contributes to decoded text (empty for ids without a token).
  const std::string& token_bytes(TokenId id) const;
  bool is_special(TokenId id) const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Turns a stream of ids into text for streaming output. Each push returns the text that is now
// complete; bytes of a UTF-8 sequence split across tokens are held back until the sequence is
// complete, and a byte that can never be part of valid UTF-8 is emitted as U+FFFD. The
// concatenation of every push and the final flush equals Tokenizer::decode of all the ids.
class StreamingDetokenizer {
 public:
  explicit StreamingDetokenizer(const Tokenizer& tokenizer, bool skip_special = false);
  std::string push(TokenId id);
  // Emits whatever is held back (an incomplete sequence becomes one U+FFFD) and resets.
  std::string flush();

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_;
  std::string pending_;
};

}  // namespace wedlm
