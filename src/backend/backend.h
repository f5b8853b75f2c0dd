#pragma once
// The small interface the transformer is written against. A backend owns device memory (weights,
// activations, KV cache) and runs the ops; it knows nothing about WeDLM or about layers.
// Activations are matrices of the backend's compute type (fp32 on CPU, bf16 on CUDA).
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kv/kv_cache.h"
#include "model/tensor_store.h"

namespace wedlm {

// A view of rows x cols activations on the device; `stride` is the distance between rows, in
// elements, so a view can select columns of a wider matrix (q, k, v inside fused qkv).
struct DeviceMatrix {
  void* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t stride = 0;
};

// Backend-owned storage for activations.
class DeviceBuffer {
 public:
  virtual ~DeviceBuffer() = default;
  // A view of the first `rows` rows, `cols` wide.
  virtual DeviceMatrix view(std::int64_t rows, std::int64_t cols) = 0;
};

// A weight matrix [out_features, in_features] (several checkpoint tensors stacked along the
// output dimension, e.g. fused q/k/v), with an optional bias, ready for `linear`.
class LinearWeight {
 public:
  virtual ~LinearWeight() = default;
  std::int64_t out_features = 0;
  std::int64_t in_features = 0;
};

// A vector weight (RMSNorm gain).
class VectorWeight {
 public:
  virtual ~VectorWeight() = default;
  std::int64_t size = 0;
};

struct AttentionShape {
  std::int64_t num_heads = 0;
  std::int64_t num_kv_heads = 0;
  std::int64_t head_dim = 0;
};

// The rows of one sequence inside a batch of rows: rows [row_begin, row_begin + rows) write their
// K/V to logical cache slots cache_start.. of the sequence and attend causally in row order.
struct AttentionSequence {
  std::int64_t row_begin = 0;
  std::int64_t rows = 0;
  std::int64_t cache_start = 0;
  std::span<const std::int32_t> block_table;  // logical slot s -> block block_table[s / block_size]
};

// The per-chunk data of one Transformer::run_chunk: everything its ops read from the host. The
// rest (weights, activation buffers, the cache's memory) is fixed for a given `owner` and cache.
struct ChunkInputs {
  const void* owner = nullptr;  // the caller (a Transformer): its buffers and weights stay fixed
  KvCache* cache = nullptr;
  AttentionShape attention;
  std::span<const std::int32_t> ids;
  std::span<const std::int32_t> positions;
  std::span<const AttentionSequence> sequences;
};

// The normalized input of a sublayer (see Backend::add_rmsnorm_into): residual_out = residual +
// delta (no delta when delta.rows == 0), normed = rmsnorm(residual_out) * norm. residual_out must
// not alias residual or delta (a fused GEMM reads residual in every block while one writes
// residual_out); normed is where a backend that normalizes separately puts the result.
struct NormedInput {
  DeviceMatrix residual, delta, residual_out, normed;
  const VectorWeight* norm = nullptr;
  float eps = 0;
};

// The q/k normalization and rotation of a layer (see Backend::qk_norm_rope).
struct QkRope {
  const VectorWeight* q_norm = nullptr;
  const VectorWeight* k_norm = nullptr;
  float eps = 0;
  std::span<const std::int32_t> positions;
  double theta = 0;
};

// How one logits row becomes a token when its request samples (temperature > 0): the request's
// parameters, and the uniform its draw uses, taken from the request's generator in row order
// (decode/sampler.h, step 6).
struct RowDraw {
  double temperature = 1.0;
  std::int32_t top_k = 0;
  double top_p = 1.0;
  double uniform = 0.0;
};

// Backend::sample_logits on host memory: rows `count` x `cols` of fp32, `stride` apart.
void sample_rows_on_host(const float* rows, std::int64_t count, std::int64_t cols, std::int64_t stride,
                         std::span<const RowDraw> draws, std::int32_t* tokens);

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;

  // `biases` is empty or has one entry per part (all present).
  virtual std::unique_ptr<LinearWeight> make_linear(std::span<const TensorInfo* const> parts,
                                                    std::span<const TensorInfo* const> biases) = 0;
  virtual std::unique_ptr<VectorWeight> make_vector(const TensorInfo& tensor) = 0;
  virtual std::unique_ptr<DeviceBuffer> alloc(std::int64_t rows, std::int64_t cols) = 0;
  virtual std::unique_ptr<KvCache> make_kv_cache(const KvCacheShape& shape) = 0;

  // out[r] = table[ids[r]] (the embedding lookup).
  virtual void embed(const LinearWeight& table, std::span<const std::int32_t> ids, DeviceMatrix out) = 0;
  // out = rmsnorm(x) * w.
  virtual void rmsnorm(DeviceMatrix x, const VectorWeight& w, float eps, DeviceMatrix out) = 0;
  // residual += delta; out = rmsnorm(residual) * w.
  virtual void add_rmsnorm(DeviceMatrix residual, DeviceMatrix delta, const VectorWeight& w, float eps,
                           DeviceMatrix out) = 0;
  // residual += delta.
  virtual void add(DeviceMatrix residual, DeviceMatrix delta) = 0;
  // to = from (same shape).
  virtual void copy(DeviceMatrix from, DeviceMatrix to) = 0;
  // residual_out = residual + delta (just residual when delta.rows == 0); out =
  // rmsnorm(residual_out) * w. residual_out may be residual itself.
  virtual void add_rmsnorm_into(DeviceMatrix residual, DeviceMatrix delta, DeviceMatrix residual_out,
                                const VectorWeight& w, float eps, DeviceMatrix out) {
    if (residual_out.data != residual.data) copy(residual, residual_out);
    if (delta.rows > 0) {
      add_rmsnorm(residual_out, delta, w, eps, out);
    } else {
      rmsnorm(residual_out, w, eps, out);
    }
  }
  // out = x W^T + b.
  virtual void linear(DeviceMatrix x, const LinearWeight& w, DeviceMatrix out) = 0;
  // In place on fused qkv rows [q heads | k heads | v heads]: optional per-head RMSNorm of q and k,
  // then neox RoPE of q and k at each row's logical position.
  virtual void qk_norm_rope(DeviceMatrix qkv, const AttentionShape& shape, const VectorWeight* q_norm,
                            const VectorWeight* k_norm, float eps, std::span<const std::int32_t> positions,
                            double rope_theta) = 0;
  // For each sequence: writes its row r's k and v to logical cache slot `cache_start + r` of
  // `layer`, then computes attention for each row r over logical slots [0, cache_start + r]
  // (causal in row order). out: [rows, q].
  virtual void attention(DeviceMatrix qkv, const AttentionShape& shape, KvCache& cache, std::int64_t layer,
                         std::span<const AttentionSequence> sequences, DeviceMatrix out) = 0;
  // gate_up = [gate | up] per row; out = silu(gate) * up.
  virtual void silu_mul(DeviceMatrix gate_up, DeviceMatrix out) = 0;

  // Fused sequences of the ops above, as a layer issues them. The defaults run the ops one by
  // one; a backend overrides them where fusing saves launches. Results equal the defaults'.
  //
  // qk_norm_rope(qkv, ...) then attention(qkv, ...).
  virtual void rope_attention(DeviceMatrix qkv, const AttentionShape& shape, const QkRope& rope, KvCache& cache,
                              std::int64_t layer, std::span<const AttentionSequence> sequences, DeviceMatrix out) {
    qk_norm_rope(qkv, shape, rope.q_norm, rope.k_norm, rope.eps, rope.positions, rope.theta);
    attention(qkv, shape, cache, layer, sequences, out);
  }
  // linear(x, gate_up, scratch) then silu_mul(scratch, out); scratch is [rows, 2 * out.cols].
  virtual void linear_silu_mul(DeviceMatrix x, const LinearWeight& gate_up, DeviceMatrix scratch, DeviceMatrix out) {
    linear(x, gate_up, scratch);
    silu_mul(scratch, out);
  }
  // add_rmsnorm_into(in...) then linear(in.normed, w, out): the GEMM that opens a sublayer.
  virtual void normed_linear(const NormedInput& in, const LinearWeight& w, DeviceMatrix out) {
    add_rmsnorm_into(in.residual, in.delta, in.residual_out, *in.norm, in.eps, in.normed);
    linear(in.normed, w, out);
  }
  // add_rmsnorm_into(in...) then linear_silu_mul(in.normed, gate_up, scratch, out).
  virtual void normed_linear_silu_mul(const NormedInput& in, const LinearWeight& gate_up, DeviceMatrix scratch,
                                      DeviceMatrix out) {
    add_rmsnorm_into(in.residual, in.delta, in.residual_out, *in.norm, in.eps, in.normed);
    linear_silu_mul(in.normed, gate_up, scratch, out);
  }
  // out[i] = x[rows[i]].
  virtual void gather_rows(DeviceMatrix x, std::span<const std::int32_t> rows, DeviceMatrix out) = 0;
  // Copies a matrix to the host as fp32, row-major, `cols` per row.
  virtual void download(DeviceMatrix x, float* host) = 0;
  // Per row of `logits`: the entropy of its softmax (natural log, no temperature) and its argmax
  // (the lowest index among equal maxima), written to host arrays of `logits.rows` entries. What
  // a decoder reads of a vocab-sized row, without copying the row.
  virtual void summarize_logits(DeviceMatrix logits, float* entropy, std::int32_t* argmax) = 0;
  // Per row r of `logits` (draws.size() rows, temperature > 0): the token wedlm::Sampler chooses
  // from it with draws[r]'s parameters and uniform, to the host array `tokens`. Throws
  // wedlm::Error for a row Sampler cannot sample (NaN, no finite maximum). The default
  // downloads the rows and samples them on the host.
  virtual void sample_logits(DeviceMatrix logits, std::span<const RowDraw> draws, std::int32_t* tokens);

  // Brackets the ops of one chunk (embed .. last add_rmsnorm), so that a backend can record
  // their launches once per shape and replay the recording later with only `in`'s data
  // refreshed (CUDA graphs: one launch instead of hundreds). Returns true when the chunk was
  // replayed: the caller then issues none of its ops and does not call end_chunk. Otherwise the
  // caller issues the ops, with exactly the spans of `in`, and then calls end_chunk(true), or
  // end_chunk(false) when an op threw. Results never depend on whether a chunk was replayed.
  // The defaults run every chunk as its ops are issued.
  virtual bool begin_chunk(const ChunkInputs& in) {
    (void)in;
    return false;
  }
  virtual void end_chunk(bool completed) { (void)completed; }
  // `owner` is going away: anything recorded for it (which points at its buffers) is dropped.
  virtual void forget_owner(const void* owner) { (void)owner; }
};

enum class DeviceKind { Cpu, Cuda };
DeviceKind parse_device(const std::string& name);
std::unique_ptr<Backend> make_backend(DeviceKind kind);

}  // namespace wedlm
