#include "backend/cuda/step_graphs.h"

#include <iterator>

#include "backend/cuda/cuda_check.h"

namespace wedlm::cuda {

const StepGraphs::Entry* StepGraphs::find(const Key& key) const {
  auto found = graphs_.find(key);
  return found == graphs_.end() ? nullptr : &found->second;
}

bool StepGraphs::seen_before(const Key& key) { return !seen_.insert(key).second; }

void StepGraphs::begin_capture(cudaStream_t stream) {
  // Thread-local: other threads' CUDA calls neither join nor break this capture.
  WEDLM_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
}

const StepGraphs::Entry& StepGraphs::end_capture(cudaStream_t stream, const Key& key, std::int64_t vocab) {
  cudaGraph_t graph = nullptr;
  WEDLM_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  cudaGraphExec_t exec = nullptr;
  const cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  WEDLM_CUDA_CHECK(e);
  if (graphs_.size() >= kMaxGraphs) {
    WEDLM_CUDA_CHECK(cudaStreamSynchronize(stream));
    clear();
  }
  ++recorded_;
  Entry& entry = graphs_[key];
  entry.exec = exec;
  entry.vocab = vocab;
  return entry;
}

void StepGraphs::abandon_capture(cudaStream_t stream) {
  cudaGraph_t graph = nullptr;
  // Errors are ignored: this runs while another error propagates.
  if (cudaStreamEndCapture(stream, &graph) == cudaSuccess && graph != nullptr) cudaGraphDestroy(graph);
  cudaGetLastError();
}

void StepGraphs::launch(const Entry& entry, cudaStream_t stream, bool replay) {
  WEDLM_CUDA_CHECK(cudaGraphLaunch(entry.exec, stream));
  if (replay) ++replayed_;
}

void StepGraphs::forget(std::intptr_t owner) {
  for (auto it = graphs_.begin(); it != graphs_.end();) {
    if (it->first.front() == owner) {
      cudaGraphExecDestroy(it->second.exec);
      it = graphs_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = seen_.begin(); it != seen_.end();) it = it->front() == owner ? seen_.erase(it) : std::next(it);
}

void StepGraphs::clear() {
  for (auto& [key, entry] : graphs_) cudaGraphExecDestroy(entry.exec);
  graphs_.clear();
}

}  // namespace wedlm::cuda
