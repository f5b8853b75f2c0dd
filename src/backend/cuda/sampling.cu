// Sampling a token from each bf16 logits row on the GPU, as wedlm::Sampler does on the host.
//
// A cluster of kRanks blocks per row, the row read from L2 once a pass and split between the
// blocks; rank 0 (the lead) gathers what the passes found and decides. A bf16 logit has a
// 16-bit orderable key, so the candidate order (logit descending, id ascending) needs no sort:
//  - top-k: the k-th largest key by a two-digit radix select on counts, then the id of the last
//    tie kept (ties go in ascending id order);
//  - top-p: the boundary key by a four-digit radix select on softmax mass (double), then how
//    many of its ties the running sum needs, and the id of the last one kept;
//  - the draw: weights in double summed per 256 consecutive ids ("units"), the crossing unit
//    found by a running sum over units, the token by a running sum inside it.
// Every sum has a fixed order (per-lane sequential, then xor trees, then scans over units), so
// the same row and uniform give the same token on every run.
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/pdl.h"
#include "backend/cuda/sampling.h"

namespace wedlm::cuda {

namespace {

namespace cg = cooperative_groups;

constexpr int kRanks = 8;  // blocks a row (one cluster): a row's exps split 8 ways
constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;
constexpr int kPerLane = 8;           // ids a lane holds in a unit: one 16-byte load
constexpr int kUnit = 32 * kPerLane;  // consecutive ids of one warp's load
constexpr int kDigitBits = 4;         // top-p's radix digits: a bin per digit in every thread
constexpr int kDigits = 1 << kDigitBits;
static_assert(kWarps == kDigits, "each warp reduces one digit's bin");

// Larger key = larger logit; -0 and +0 share a key. NaN is rejected before keys are compared.
__device__ __forceinline__ std::uint32_t key_of(std::uint32_t bits) {
  if ((bits & 0x7fffu) == 0) bits = 0;
  return (bits & 0x8000u) != 0 ? (~bits & 0xffffu) : (bits | 0x8000u);
}
__device__ __forceinline__ float value_of(std::uint32_t key) {
  const std::uint32_t bits = (key & 0x8000u) != 0 ? (key & 0x7fffu) : (~key & 0xffffu);
  return __uint_as_float(bits << 16);
}
__device__ __forceinline__ bool is_nan_bits(std::uint32_t bits) {
  return (bits & 0x7f80u) == 0x7f80u && (bits & 0x7fu) != 0;
}

struct Row {
  const std::uint16_t* bits = nullptr;
  std::int64_t n = 0;
  std::int64_t units = 0;
  bool vec = false;

  // The ids [unit * kUnit + lane * kPerLane, +kPerLane); ids past the row read as 0.
  __device__ uint4 load(std::int64_t unit, int lane) const {
    const std::int64_t first = unit * kUnit + lane * kPerLane;
    if (vec && first + kPerLane <= n) return __ldg(reinterpret_cast<const uint4*>(bits + first));
    std::uint32_t w[kPerLane / 2] = {};
    for (int j = 0; j < kPerLane; ++j) {
      if (first + j < n) w[j / 2] |= static_cast<std::uint32_t>(bits[first + j]) << (16 * (j % 2));
    }
    return make_uint4(w[0], w[1], w[2], w[3]);
  }
};

__device__ __forceinline__ std::uint32_t half_of(const uint4& raw, int j) {
  const std::uint32_t word = j < 2 ? raw.x : j < 4 ? raw.y : j < 6 ? raw.z : raw.w;
  return (word >> (16 * (j % 2))) & 0xffffu;
}

// f(id, bits, in_row) for the 8 ids of a lane's load; every lane calls f for every j, so f may
// use warp-wide operations.
template <typename F>
__device__ __forceinline__ void each_id(const Row& row, std::int64_t unit, int lane, const uint4& raw, F&& f) {
  const std::int64_t first = unit * kUnit + lane * kPerLane;
#pragma unroll
  for (int j = 0; j < kPerLane; ++j) f(first + j, half_of(raw, j), first + j < row.n);
}

// g(unit, lane, raw) over this block's share of the row's units (warp w of rank c takes units
// c * kWarps + w, then every kRanks * kWarps); a few loads in flight per lane (the row comes
// from L2; one at a time would leave the pass latency-bound). Warp-uniform control flow, so g
// may use warp-wide operations.
template <typename G>
__device__ __forceinline__ void for_units(const Row& row, int rank, G&& g) {
  constexpr int kAhead = 4;
  constexpr std::int64_t kStride = std::int64_t{kRanks} * kWarps;
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  for (std::int64_t u0 = std::int64_t{rank} * kWarps + warp; u0 < row.units; u0 += kStride * kAhead) {
    uint4 raw[kAhead];
#pragma unroll
    for (int a = 0; a < kAhead; ++a) {
      const std::int64_t u = u0 + a * kStride;
      if (u < row.units) raw[a] = row.load(u, lane);
    }
#pragma unroll
    for (int a = 0; a < kAhead; ++a) {
      const std::int64_t u = u0 + a * kStride;
      if (u < row.units) g(u, lane, raw[a]);
    }
  }
}

__device__ __forceinline__ double warp_sum(double v) {
  // Butterfly: every lane adds the same two values (commutative), so all lanes agree.
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Inclusive prefix sums across the warp, lane order.
template <typename T>
__device__ __forceinline__ T warp_inclusive_scan(T v, int lane) {
  for (int o = 1; o < 32; o <<= 1) {
    const T other = __shfl_up_sync(0xffffffffu, v, o);
    if (lane >= o) v += other;
  }
  return v;
}

// Warp-wide: the first of `n` units (32 a round) whose value and running total (inclusive)
// satisfy `crosses`; -1 when none does. `before_unit` receives the running total before it
// (the scan's exclusive sum, as every lane computes it).
template <typename T, typename Value, typename Crosses>
__device__ std::int64_t first_crossing(std::int64_t n, int lane, Value&& value, Crosses&& crosses, T& before_unit) {
  T before = 0;
  for (std::int64_t u0 = 0; u0 < n; u0 += 32) {
    const T v = u0 + lane < n ? value(u0 + lane) : T(0);
    const T inclusive = warp_inclusive_scan(v, lane);
    const unsigned hit = __ballot_sync(0xffffffffu, crosses(v, before + inclusive));
    if (hit != 0) {
      const int first = __ffs(hit) - 1;
      const T exclusive = __shfl_up_sync(0xffffffffu, inclusive, 1);
      before_unit = __shfl_sync(0xffffffffu, before + (lane == 0 ? T(0) : exclusive), first);
      return u0 + first;
    }
    before += __shfl_sync(0xffffffffu, inclusive, 31);
  }
  return -1;
}

// Per block; the lead's copy holds what the cluster found and decided.
struct Shared {
  std::uint32_t max_key;  // lead: the row's largest key
  int nan;                // lead: whether the row holds NaN
  unsigned last_positive;  // lead: 1 + the highest kept id with a positive weight; 0: none
  int hist[256];           // this block's counts of a digit
  int hist_total[256];     // lead: the cluster's
  double digit_mass[kDigits];  // this block's mass of a digit
  int digit_count[kDigits];
  double total_mass[kDigits];  // lead: the cluster's
  int total_count[kDigits];
  // Decisions of the lead, read by every block.
  std::uint32_t key;
  std::int64_t above;
  std::int64_t found_id, need;
  int use_p;
  std::int64_t ties_p;
  double target_p, above_p;
};

// Where a block stands in its row's cluster.
struct Block {
  cg::cluster_group cluster;
  int rank;
  Shared& s;     // this block's
  Shared* lead;  // rank 0's
  int* unit_count;     // lead's, one per unit
  double* unit_mass;   // lead's, one per unit
  __device__ bool is_lead() const { return rank == 0; }
};

// The id of the need-th (1-based) id, in ascending order, whose (id, key) satisfies `match`.
// need must not exceed the number of matches.
template <typename M>
__device__ std::int64_t nth_match(const Row& row, Block& b, std::int64_t need, M&& match) {
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  for_units(row, b.rank, [&](std::int64_t unit, int l, const uint4& raw) {
    int count = 0;
    each_id(row, unit, l, raw, [&](std::int64_t id, std::uint32_t bits, bool in_row) {
      count += in_row && match(id, key_of(bits)) ? 1 : 0;
    });
    count = __reduce_add_sync(0xffffffffu, count);
    if (l == 0) b.unit_count[unit] = count;
  });
  b.cluster.sync();
  if (b.is_lead() && warp == 0) {
    Shared& s = b.s;
    std::int64_t before = 0;
    const std::int64_t unit = first_crossing<std::int64_t>(
        row.units, lane, [&](std::int64_t u) { return static_cast<std::int64_t>(b.unit_count[u]); },
        [&](std::int64_t, std::int64_t total) { return total >= need; }, before);
    if (lane == 0) {
      s.found_id = -1;
      s.need = need - before;
    }
    __syncwarp();
    if (unit >= 0) {
      const uint4 raw = row.load(unit, lane);
      int count = 0;
      each_id(row, unit, lane, raw, [&](std::int64_t id, std::uint32_t bits, bool in_row) {
        count += in_row && match(id, key_of(bits)) ? 1 : 0;
      });
      const int inclusive = warp_inclusive_scan(count, lane);
      std::int64_t left = s.need - (inclusive - count);
      if (left >= 1 && left <= count) {
        each_id(row, unit, lane, raw, [&](std::int64_t id, std::uint32_t bits, bool in_row) {
          if (in_row && match(id, key_of(bits)) && --left == 0) s.found_id = id;
        });
      }
    }
  }
  b.cluster.sync();
  return b.lead->found_id;
}

// The largest key K with at least `need` ids of key >= K; `above` receives the count of ids
// with key > K. Two passes of 8-bit digits on counts.
__device__ std::uint32_t select_key_by_count(const Row& row, Block& b, std::int64_t need, std::int64_t& above) {
  const int tid = static_cast<int>(threadIdx.x), lane = tid % 32;
  Shared& s = b.s;
  std::uint32_t prefix = 0;
  above = 0;
  for (int shift = 8; shift >= 0; shift -= 8) {
    for (int d = tid; d < 256; d += kThreads) s.hist[d] = 0;
    __syncthreads();
    for_units(row, b.rank, [&](std::int64_t unit, int l, const uint4& raw) {
      each_id(row, unit, l, raw, [&](std::int64_t, std::uint32_t bits, bool in_row) {
        const std::uint32_t key = key_of(bits);
        const bool take = in_row && (key >> (shift + 8)) == (prefix >> (shift + 8));
        const std::uint32_t digit = (key >> shift) & 0xffu;
        // Logits crowd into a few bins: one atomic per distinct digit of the warp.
        const unsigned active = __ballot_sync(0xffffffffu, take);
        if (take) {
          const unsigned peers = __match_any_sync(active, digit);
          if (lane == __ffs(peers) - 1) atomicAdd(&s.hist[digit], __popc(peers));
        }
      });
    });
    __syncthreads();
    for (int d = tid; d < 256; d += kThreads) {
      if (s.hist[d] != 0) atomicAdd(&b.lead->hist_total[d], s.hist[d]);
    }
    b.cluster.sync();
    if (b.is_lead() && tid < 32) {
      // Bins from the top, 32 at a time: the first where the running count reaches `need`.
      std::int64_t before = above;
      for (int d0 = 255; d0 >= 0; d0 -= 32) {
        const int count = s.hist_total[d0 - lane];
        const int inclusive = warp_inclusive_scan(count, lane);
        const unsigned reached = __ballot_sync(0xffffffffu, before + inclusive >= need);
        if (reached != 0) {
          if (lane == __ffs(reached) - 1) {
            s.key = prefix | (static_cast<std::uint32_t>(d0 - lane) << shift);
            s.above = before + inclusive - count;
          }
          break;
        }
        before += __shfl_sync(0xffffffffu, inclusive, 31);
      }
      __syncwarp();
      for (int d = lane; d < 256; d += 32) s.hist_total[d] = 0;  // for the next pass
    }
    b.cluster.sync();
    prefix = b.lead->key;
    above = b.lead->above;
  }
  return prefix;
}

__global__ void __launch_bounds__(kThreads, 1) sample_logits_kernel(Mat logits, const SampleParams* params,
                                                                 std::int32_t* tokens, std::int32_t* status) {
  pdl_launch_dependents();
  pdl_wait();
  extern __shared__ double dynamic[];
  __shared__ Shared shared;
  const int tid = static_cast<int>(threadIdx.x), warp = tid / 32, lane = tid % 32;
  const std::int64_t r = blockIdx.y;
  const SampleParams p = params[r];
  Row row;
  row.bits = reinterpret_cast<const std::uint16_t*>(logits.data + r * logits.stride);
  row.n = logits.cols;
  row.units = (row.n + kUnit - 1) / kUnit;
  row.vec = logits.stride % 8 == 0 && reinterpret_cast<std::uintptr_t>(logits.data) % 16 == 0;
  double* thread_bins = dynamic;  // [kDigits][kThreads]
  double* unit_mass = dynamic + kDigits * kThreads;
  int* unit_count = reinterpret_cast<int*>(unit_mass + row.units);
  cg::cluster_group cluster = cg::this_cluster();
  Block b{cluster, static_cast<int>(cluster.block_rank()), shared, cluster.map_shared_rank(&shared, 0),
          cluster.map_shared_rank(unit_count, 0), cluster.map_shared_rank(unit_mass, 0)};
  Shared& s = shared;

  if (b.is_lead()) {
    if (tid == 0) {
      s.max_key = 0;
      s.nan = 0;
      s.last_positive = 0;
    }
    for (int d = tid; d < 256; d += kThreads) s.hist_total[d] = 0;
  }
  cluster.sync();

  // The largest key; NaN anywhere rejects the row (as the host sampler does).
  {
    std::uint32_t max_key = 0;
    bool nan = false;
    for_units(row, b.rank, [&](std::int64_t unit, int l, const uint4& raw) {
      each_id(row, unit, l, raw, [&](std::int64_t, std::uint32_t bits, bool in_row) {
        if (!in_row) return;
        if (is_nan_bits(bits)) {
          nan = true;
        } else {
          max_key = max(max_key, key_of(bits));
        }
      });
    });
    max_key = __reduce_max_sync(0xffffffffu, max_key);
    nan = __any_sync(0xffffffffu, nan);
    if (lane == 0) {
      if (max_key != 0) atomicMax(&b.lead->max_key, max_key);
      if (nan) atomicOr(&b.lead->nan, 1);
    }
  }
  cluster.sync();
  const std::uint32_t row_max_key = b.lead->max_key;
  const bool row_nan = b.lead->nan != 0;
  const float max_value = value_of(row_max_key);
  if (row_nan || !isfinite(max_value)) {
    if (b.is_lead() && tid == 0) {
      tokens[r] = -1;
      status[r] = row_nan ? kSampleNan : kSampleMaxNotFinite;
    }
    cluster.sync();  // no block leaves while another may still read the lead's memory
    return;
  }
  const double max_logit = max_value;

  // top-k: ids with key > key_k are kept, and the ties at key_k up to id last_k.
  std::uint32_t key_k = 0;  // no key is 0 (that is a NaN's): keeps everything
  std::int64_t last_k = -1;
  if (p.top_k > 0 && p.top_k < row.n) {
    std::int64_t above = 0;
    key_k = select_key_by_count(row, b, p.top_k, above);
    const std::uint32_t k = key_k;
    last_k = nth_match(row, b, p.top_k - above, [k](std::int64_t, std::uint32_t key) { return key == k; });
  }
  auto kept_by_k = [key_k, last_k](std::int64_t id, std::uint32_t key) {
    return key > key_k || (key == key_k && id <= last_k);
  };

  // top-p over the top-k set: the shortest prefix of the candidate order whose softmax mass
  // reaches top_p. Radix select on mass, most significant digit first.
  std::uint32_t key_p = 0;
  std::int64_t last_p = -1;
  if (p.top_p < 1.0) {
    std::uint32_t prefix = 0;
    double above = 0.0, target = 0.0;
    bool reached = true;
    for (int shift = 16 - kDigitBits; shift >= 0 && reached; shift -= kDigitBits) {
      for (int d = 0; d < kDigits; ++d) thread_bins[d * kThreads + tid] = 0.0;
      if (tid < kDigits) s.digit_count[tid] = 0;
      __syncthreads();
      for_units(row, b.rank, [&](std::int64_t unit, int l, const uint4& raw) {
        // The lane's exps first (independent, so in flight together), then the bins.
        const std::int64_t first_id = unit * kUnit + l * kPerLane;
        double e[kPerLane];
        bool take[kPerLane];
#pragma unroll
        for (int j = 0; j < kPerLane; ++j) {
          const std::uint32_t key = key_of(half_of(raw, j));
          take[j] = first_id + j < row.n && (key >> (shift + kDigitBits)) == (prefix >> (shift + kDigitBits)) &&
                    kept_by_k(first_id + j, key);
          e[j] = take[j] ? exp(static_cast<double>(value_of(key)) - max_logit) : 0.0;
        }
#pragma unroll
        for (int j = 0; j < kPerLane; ++j) {
          if (!take[j]) continue;
          const int digit = static_cast<int>((key_of(half_of(raw, j)) >> shift) & (kDigits - 1));
          thread_bins[digit * kThreads + tid] += e[j];
          if (shift == 0) atomicAdd(&s.digit_count[digit], 1);
        }
      });
      __syncthreads();
      {
        double v = 0.0;
        for (int t = lane * (kThreads / 32); t < (lane + 1) * (kThreads / 32); ++t) v += thread_bins[warp * kThreads + t];
        v = warp_sum(v);
        if (lane == 0) s.digit_mass[warp] = v;
      }
      cluster.sync();
      if (b.is_lead()) {
        // Warp d sums digit d over the ranks (lane c reads rank c), in a fixed tree.
        double m = 0.0;
        int c = 0;
        if (lane < kRanks) {
          const Shared* other = cluster.map_shared_rank(&shared, lane);
          m = other->digit_mass[warp];
          c = other->digit_count[warp];
        }
        static_assert(kRanks <= 32 && (kRanks & (kRanks - 1)) == 0, "ranks fit one warp's tree");
        for (int o = kRanks / 2; o > 0; o >>= 1) {
          m += __shfl_xor_sync(0xffffffffu, m, o);
          c += __shfl_xor_sync(0xffffffffu, c, o);
        }
        if (lane == 0) {
          s.total_mass[warp] = m;
          s.total_count[warp] = c;
        }
        __syncthreads();
      }
      if (b.is_lead() && tid == 0) {
        const double* mass = s.total_mass;
        const int* count = s.total_count;
        if (shift == 16 - kDigitBits) {
          double z = 0.0;
          for (int d = 0; d < kDigits; ++d) z += mass[d];
          target = p.top_p * z;
        }
        // The highest digit where the running mass (from the top) reaches the target; if
        // rounding leaves every digit short, the lowest digit holding mass (its whole bin is
        // within the prefix found so far).
        double running = above;
        int chosen = -1, lowest = -1;
        for (int d = kDigits - 1; d >= 0; --d) {
          if (mass[d] > 0) lowest = d;
          if (running + mass[d] >= target) {
            chosen = d;
            break;
          }
          running += mass[d];
        }
        if (chosen < 0 && lowest >= 0 && shift != 16 - kDigitBits) {
          chosen = lowest;
          running = above;
          for (int d = kDigits - 1; d > lowest; --d) running += mass[d];
        }
        s.use_p = chosen >= 0 ? 1 : 0;  // never reached at the first digit: keep everything
        if (chosen >= 0) {
          s.key = prefix | (static_cast<std::uint32_t>(chosen) << shift);
          s.above_p = running;
          s.target_p = target;
          s.ties_p = count[chosen];
        }
      }
      cluster.sync();
      reached = b.lead->use_p != 0;
      if (reached) {
        prefix = b.lead->key;
        above = b.lead->above_p;
        target = b.lead->target_p;
      }
    }
    if (reached) {
      // How many ties at key_p the running sum takes: the smallest j with above + j * e >= target.
      const double e = exp(static_cast<double>(value_of(prefix)) - max_logit);
      const std::int64_t ties = b.lead->ties_p;
      const double ratio = e > 0 ? (target - above) / e : static_cast<double>(ties);
      std::int64_t j = ratio >= static_cast<double>(ties) ? ties : static_cast<std::int64_t>(ceil(ratio));
      j = j < 1 ? 1 : j > ties ? ties : j;
      while (j > 1 && above + static_cast<double>(j - 1) * e >= target) --j;
      while (j < ties && above + static_cast<double>(j) * e < target) ++j;
      key_p = prefix;
      const std::uint32_t kp = prefix;
      last_p = nth_match(row, b, j, [kp, &kept_by_k](std::int64_t id, std::uint32_t key) {
        return key == kp && kept_by_k(id, key);
      });
    }
  }
  auto kept = [&](std::int64_t id, std::uint32_t key) {
    return kept_by_k(id, key) && (key > key_p || (key == key_p && id <= last_p));
  };
  auto weight = [&](std::uint32_t key) { return exp((static_cast<double>(value_of(key)) - max_logit) / p.temperature); };

  // The draw: weights of the kept ids summed per unit, then the running sum in id order.
  for_units(row, b.rank, [&](std::int64_t unit, int l, const uint4& raw) {
    // The lane's weights first, then their sum: eight independent exps in flight (the pass is
    // bound by their latency), and adding a 0 weight changes no sum.
    const std::int64_t first_id = unit * kUnit + l * kPerLane;
    double w[kPerLane];
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) {
      const std::uint32_t key = key_of(half_of(raw, j));
      w[j] = first_id + j < row.n && kept(first_id + j, key) ? weight(key) : 0.0;
    }
    double sum = 0.0;
    unsigned last = 0;  // 1 + id
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) {
      sum += w[j];
      if (w[j] > 0) last = static_cast<unsigned>(first_id + j + 1);
    }
    sum = warp_sum(sum);
    last = __reduce_max_sync(0xffffffffu, last);
    if (l == 0) {
      b.unit_mass[unit] = sum;
      if (last > 0) atomicMax(&b.lead->last_positive, last);
    }
  });
  cluster.sync();
  if (!b.is_lead() || warp != 0) return;  // nothing reads another block's memory from here on
  double total = 0.0;
  for (std::int64_t u = lane; u < row.units; u += 32) total += unit_mass[u];
  total = warp_sum(total);
  const double target = p.uniform * total;
  // Only a unit with mass can hold the crossing (the scan's rounding is not monotone to the last
  // bit: an empty unit could otherwise look like the one that crosses).
  double unit_start = 0.0;
  const std::int64_t unit = first_crossing<double>(
      row.units, lane, [&](std::int64_t u) { return unit_mass[u]; },
      [&](double mass, double running) { return mass > 0 && running > target; }, unit_start);
  // Rounding kept the running sum under the target: the last positive weight, as the host does.
  std::int64_t token = static_cast<std::int64_t>(s.last_positive) - 1;
  if (unit >= 0) {
    const uint4 raw = row.load(unit, lane);
    const std::int64_t first_id = unit * kUnit + lane * kPerLane;
    double w[kPerLane];
    double sum = 0.0;
    std::int64_t last = -1;
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) {
      const std::uint32_t key = key_of(half_of(raw, j));
      w[j] = first_id + j < row.n && kept(first_id + j, key) ? weight(key) : 0.0;
      sum += w[j];
      if (w[j] > 0) last = first_id + j;
    }
    const double inclusive = warp_inclusive_scan(sum, lane);
    const double exclusive = __shfl_up_sync(0xffffffffu, inclusive, 1);
    double running = unit_start + (lane == 0 ? 0.0 : exclusive);
    std::int64_t crossing = -1;
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) {
      if (w[j] > 0 && crossing < 0) {
        running += w[j];
        if (running > target) crossing = first_id + j;
      }
    }
    const unsigned found = __ballot_sync(0xffffffffu, crossing >= 0);
    const unsigned last_in_unit = __reduce_max_sync(0xffffffffu, static_cast<unsigned>(last + 1));
    if (found != 0) {
      token = __shfl_sync(0xffffffffu, crossing, __ffs(found) - 1);
    } else if (last_in_unit > 0) {
      token = static_cast<std::int64_t>(last_in_unit) - 1;
    }
  }
  if (lane == 0) {
    tokens[r] = static_cast<std::int32_t>(token);
    status[r] = kSampleOk;
  }
}

}  // namespace

namespace {

std::size_t shared_bytes(std::int64_t cols) {
  const std::int64_t units = (cols + kUnit - 1) / kUnit;
  return sizeof(double) * (std::size_t{kDigits} * kThreads + static_cast<std::size_t>(units)) +
         sizeof(int) * static_cast<std::size_t>(units);
}

// Opens the kernel up to the shared memory of the widest row (once).
void configure_kernel() {
  static const bool configured = [] {
    WEDLM_CUDA_CHECK(cudaFuncSetAttribute(sample_logits_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          static_cast<int>(shared_bytes(kSampleMaxCols))));
    return true;
  }();
  (void)configured;
}

}  // namespace

bool sample_logits_supported(std::int64_t cols) {
  if (cols > kSampleMaxCols) return false;
  static const bool fits = [] {
    configure_kernel();
    cudaLaunchAttribute attributes[2];
    cudaLaunchConfig_t config =
        launch_config(dim3(kRanks), kThreads, shared_bytes(kSampleMaxCols), nullptr, kRanks, attributes);
    config.numAttrs = 1;  // the cluster shape alone decides whether it fits
    int clusters = 0;
    const cudaError_t e = cudaOccupancyMaxActiveClusters(&clusters, sample_logits_kernel, &config);
    if (e != cudaSuccess || clusters == 0) {
      (void)cudaGetLastError();
      std::fprintf(stderr, "wedlm: a cluster of %d sampling blocks does not fit this GPU (%s); rows are sampled on the host\n",
                   kRanks, e != cudaSuccess ? cudaGetErrorString(e) : "no room");
      return false;
    }
    return true;
  }();
  return fits;
}

void launch_sample_logits(Mat logits, const SampleParams* params, std::int32_t* tokens, std::int32_t* status,
                          cudaStream_t stream) {
  if (logits.rows == 0) return;
  configure_kernel();
  launch_clustered(sample_logits_kernel, dim3(kRanks, static_cast<unsigned>(logits.rows)), kThreads,
                   shared_bytes(logits.cols), kRanks, stream, logits, params, tokens, status);
}

}  // namespace wedlm::cuda
