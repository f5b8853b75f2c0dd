#include "tokenizer/bpe_model.h"

#include <algorithm>
#include <bit>
#include <queue>

#include "tokenizer/byte_level.h"
#include "util/error.h"

namespace wedlm::tokenizer {

BpeModel::BpeModel(std::vector<std::pair<std::string, TokenId>> vocab,
                   const std::vector<std::pair<std::string, std::string>>& merges, bool ignore_merges,
                   std::string_view origin)
    : ignore_merges_(ignore_merges) {
  TokenId max_id = -1;
  for (const auto& entry : vocab) max_id = std::max(max_id, entry.second);
  tokens_.resize(static_cast<std::size_t>(max_id + 1));
  std::vector<TokenId> order;
  order.reserve(vocab.size());
  for (auto& [token, id] : vocab) {
    if (token.empty()) fail("{}: model.vocab holds an empty token (id {})", origin, id);
    tokens_[static_cast<std::size_t>(id)] = std::move(token);
    order.push_back(id);
  }
  index_.build(tokens_, order);

  const ByteLevelMap& bytes = byte_level_map();
  for (int b = 0; b < 256; ++b) {
    const auto id = index_.find(bytes.byte_to_chars(static_cast<unsigned char>(b)));
    if (!id) fail("{}: model.vocab lacks the byte-level token for byte 0x{:02X}", origin, b);
    byte_token_[b] = *id;
  }
  merges_.reserve(merges.size());
  std::string joined;
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    const auto l = index_.find(left), r = index_.find(right);
    // Vocabularies trained GPT-2 style number the result of merge k as 256 + k (all of Qwen's
    // do); checking that id first skips a third of the lookups. Any other layout falls back.
    std::optional<TokenId> result;
    const std::size_t guess = 256 + rank;
    if (guess < tokens_.size()) {
      const std::string& candidate = tokens_[guess];
      if (candidate.size() == left.size() + right.size() && candidate.starts_with(left) && candidate.ends_with(right))
        result = static_cast<TokenId>(guess);
    }
    if (!result) {
      joined.assign(left).append(right);
      result = index_.find(joined);
    }
    if (!l || !r || !result)
      fail("{}: model.merges[{}] \"{} {}\" uses a token missing from model.vocab", origin, rank, left, right);
    // A repeated pair keeps its first (lowest) rank, as the reference does.
    merges_.insert(pair_key(*l, *r), Merge{static_cast<std::int32_t>(rank), *result});
  }
}

void BpeModel::MergeTable::reserve(std::size_t count) {
  const std::size_t capacity = std::bit_ceil(count * 2 + 16);
  entries_.assign(capacity, Entry{kEmpty, Merge{0, 0}});
  shift_ = 64 - std::countr_zero(capacity);
}

void BpeModel::MergeTable::insert(std::uint64_t key, Merge merge) {
  const std::size_t mask = entries_.size() - 1;
  for (std::size_t i = slot_of(key);; i = (i + 1) & mask) {
    if (entries_[i].key == key) return;
    if (entries_[i].key == kEmpty) {
      entries_[i] = {key, merge};
      return;
    }
  }
}

const BpeModel::Merge* BpeModel::MergeTable::find(std::uint64_t key) const {
  const std::size_t mask = entries_.size() - 1;
  for (std::size_t i = slot_of(key);; i = (i + 1) & mask) {
    if (entries_[i].key == key) return &entries_[i].merge;
    if (entries_[i].key == kEmpty) return nullptr;
  }
}

void BpeModel::encode_piece(std::string_view bytes, std::vector<TokenId>& out) const {
  if (bytes.size() == 1) {
    out.push_back(byte_token_[static_cast<unsigned char>(bytes[0])]);
    return;
  }
  const bool cacheable = bytes.size() <= kCacheMaxPieceBytes;
  if (cacheable) {
    std::lock_guard lock(cache_mutex_);
    if (const auto it = cache_.find(bytes); it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const std::size_t first = out.size();
  if (ignore_merges_) {
    if (const auto id = index_.find(byte_level_map().encode(bytes))) {
      out.push_back(*id);
    } else {
      merge_bytes(bytes, out);
    }
  } else {
    merge_bytes(bytes, out);
  }
  if (cacheable) {
    std::lock_guard lock(cache_mutex_);
    if (cache_.size() >= kCacheCapacity) cache_.clear();
    cache_.try_emplace(std::string(bytes), out.begin() + static_cast<std::ptrdiff_t>(first), out.end());
  }
}

void BpeModel::merge_bytes(std::string_view bytes, std::vector<TokenId>& out) const {
  // Symbols form a doubly linked list; candidate merges wait in a heap ordered by rank, then by
  // position, and stale candidates are skipped when popped. This is the reference's merge order:
  // always the lowest-ranked pair, leftmost first.
  struct Symbol {
    TokenId id;
    std::int32_t prev, next;
    bool alive;
  };
  struct Candidate {
    std::int32_t rank, pos;
    TokenId result;
    bool operator>(const Candidate& other) const {
      return rank != other.rank ? rank > other.rank : pos > other.pos;
    }
  };
  const auto n = static_cast<std::int32_t>(bytes.size());
  std::vector<Symbol> symbols(static_cast<std::size_t>(n));
  for (std::int32_t i = 0; i < n; ++i)
    symbols[i] = {byte_token_[static_cast<unsigned char>(bytes[i])], i - 1, i + 1 < n ? i + 1 : -1, true};

  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto consider = [&](std::int32_t left) {
    const std::int32_t right = symbols[left].next;
    if (right < 0) return;
    if (const Merge* merge = merges_.find(pair_key(symbols[left].id, symbols[right].id)))
      heap.push({merge->rank, left, merge->result});
  };
  for (std::int32_t i = 0; i + 1 < n; ++i) consider(i);

  while (!heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    Symbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    const Merge* merge = merges_.find(pair_key(left.id, right.id));
    if (merge == nullptr || merge->result != top.result) continue;
    left.id = top.result;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (left.prev >= 0) consider(left.prev);
    consider(top.pos);
  }
  for (std::int32_t i = 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
}

}  // namespace wedlm::tokenizer
