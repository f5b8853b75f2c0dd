#pragma once
#include <cstddef>

namespace wedlm::cpu {

struct BandwidthResult {
  double read_gbps = 0;  // bytes read per second, all threads, best of several passes
  double copy_gbps = 0;  // (bytes read + bytes written) per second, as a memcpy-style copy
};

// Streams over buffers much larger than the caches with every OpenMP thread.
BandwidthResult measure_memory_bandwidth(std::size_t bytes = std::size_t{1} << 30, int passes = 5);

}  // namespace wedlm::cpu
