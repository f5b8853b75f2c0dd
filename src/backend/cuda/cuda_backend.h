#pragma once
// The CUDA backend: bf16 weights uploaded once (f32/f16 checkpoints converted at upload), bf16
// activations with fp32 accumulation, paged bf16 KV cache, cuBLASLt GEMMs.
#include <memory>

#include "backend/backend.h"
#include "backend/cuda/gemv_mode.h"

namespace wedlm {

// True when the CUDA runtime sees at least one device (tests skip otherwise).
bool cuda_device_available();
// Throws when no device is usable.
std::unique_ptr<Backend> make_cuda_backend();

namespace cuda {

struct CopyBandwidth {
  double gbps = 0;  // (bytes read + bytes written) per second of a device-to-device copy
  std::size_t bytes = 0;  // size of each copy
};
// Median over `repeats` copies of `bytes` between two device buffers.
CopyBandwidth measure_copy_bandwidth(std::size_t bytes = std::size_t{1} << 30, int repeats = 20);

// Chunks of a few rows run as CUDA graphs (off with WEDLM_CUDA_GRAPHS=0, and while
// WEDLM_CUDA_PROFILE times single ops). For tests and A/B timing: switch them on a CUDA backend,
// and count what was recorded and replayed.
struct GraphStats {
  long recorded = 0;
  long replayed = 0;
};
void set_graphs_enabled(Backend& backend, bool on);
GraphStats graph_stats(const Backend& backend);

// Skinny GEMMs (<= 8 rows) may run on our GEMV kernel instead of cuBLASLt; applies to shapes
// not planned yet.
void set_gemv_mode(Backend& backend, GemvMode mode);
// Whether rows of `vocab` logits are sampled by the GPU kernel here (else Backend::sample_logits
// falls back to the host sampler).
bool samples_on_device(std::int64_t vocab);

// Tests: GEMV variant `variant` (gemv.h) for every shape planned from now on where it applies.
void force_gemv_variant(Backend& backend, int variant);

}  // namespace cuda

}  // namespace wedlm
