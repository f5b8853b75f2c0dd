#pragma once
// Recorded CUDA graphs of whole chunks (one per key: the caller, row count, KV cache and plan
// tile size) and the bookkeeping around recording them: a key is run eagerly the first time it
// is seen, recorded the second, replayed after that.
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <set>
#include <vector>

namespace wedlm::cuda {

class StepGraphs {
 public:
  // Element 0 is the owner; the rest is whatever else the recording's pointers and grids depend on.
  using Key = std::vector<std::int64_t>;
  struct Entry {
    cudaGraphExec_t exec = nullptr;
    std::int64_t vocab = 0;  // the embedding table's rows, to check replayed ids against
  };

  StepGraphs() = default;
  ~StepGraphs() { clear(); }
  StepGraphs(const StepGraphs&) = delete;
  StepGraphs& operator=(const StepGraphs&) = delete;

  const Entry* find(const Key& key) const;
  // Counts a sighting of `key`; true from the second on.
  bool seen_before(const Key& key);
  // Work enqueued on `stream` from now on is recorded, not run, until end_capture.
  void begin_capture(cudaStream_t stream);
  const Entry& end_capture(cudaStream_t stream, const Key& key, std::int64_t vocab);
  // Ends a capture whose chunk failed part way; nothing is kept.
  void abandon_capture(cudaStream_t stream);
  // Runs a graph; `replay` counts it as a replay (the launch right after recording is not one).
  void launch(const Entry& entry, cudaStream_t stream, bool replay);
  // The caller must have synchronized: these destroy graphs that may be in flight otherwise.
  void forget(std::intptr_t owner);
  void clear();

  long recorded() const { return recorded_; }
  long replayed() const { return replayed_; }  // launches of an earlier recording

 private:
  // Stale entries (a freed cache, say) are never matched again; past this many, all go.
  static constexpr std::size_t kMaxGraphs = 256;
  std::map<Key, Entry> graphs_;
  std::set<Key> seen_;
  long recorded_ = 0, replayed_ = 0;
};

}  // namespace wedlm::cuda
