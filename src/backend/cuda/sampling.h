#pragma once
// Token sampling where the logits are: per bf16 row, the token wedlm::Sampler chooses
// (src/decode/sampler.h: top-k, top-p on the raw logits, temperature, one draw) for a given
// uniform, so only ids cross PCIe. Candidate order, ties and the draw walk follow the Sampler's
// spec exactly; sums run in double in a fixed (tree) order, so a token can differ from the
// host's only where a running sum lands within rounding (~1e-16 relative) of a boundary.
#include <cstdint>

#include "backend/cuda/kernels.h"

namespace wedlm::cuda {

struct SampleParams {
  double temperature = 1.0;  // > 0
  double top_p = 1.0;        // in (0, 1]; 1 = off
  double uniform = 0.0;      // the row's draw, in [0, 1)
  std::int32_t top_k = 0;    // 0 = off
  std::int32_t pad = 0;
};

// What a row's status holds after launch_sample_logits.
enum SampleStatus : std::int32_t { kSampleOk = 0, kSampleNan = 1, kSampleMaxNotFinite = 2 };

// Rows wider than this go through the host sampler (the kernel keeps a partial sum per 256 ids
// in shared memory).
constexpr std::int64_t kSampleMaxCols = std::int64_t{1} << 20;
// Rows of one launch at most (they are the grid's y dimension); more go through the host sampler.
constexpr std::int64_t kSampleMaxRows = 65535;

// Whether launch_sample_logits can run rows of `cols` logits here: no wider than
// kSampleMaxCols, and a cluster of the kernel's blocks fits the device (a partitioned GPU may
// have too few multiprocessors to a cluster). Otherwise the caller samples on the host.
bool sample_logits_supported(std::int64_t cols);

// A cluster of blocks per row of `logits` (x.cols <= kSampleMaxCols, x.rows <= kSampleMaxRows):
// tokens[r] and status[r], device arrays of x.rows entries; params is a device array of x.rows
// entries.
void launch_sample_logits(Mat logits, const SampleParams* params, std::int32_t* tokens, std::int32_t* status,
                          cudaStream_t stream);

}  // namespace wedlm::cuda
