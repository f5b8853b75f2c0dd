#include "backend/cuda/cuda_backend.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/cuda/attention.h"
#include "backend/cuda/attention_mma.h"
#include "backend/cuda/attention_wgmma.h"
#include "backend/cuda/attention_plan.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_memory.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/op_profiler.h"
#include "backend/cuda/sampling.h"
#include "backend/cuda/step_area.h"
#include "backend/cuda/step_graphs.h"
#include "backend/cuda/sm90a.h"
#include "util/error.h"

namespace wedlm {

namespace cuda {
namespace {

// Measurement only (results are wrong): WEDLM_CUDA_SKIP=norm,rope,attention,combine,silu,
// gemm<n>x<k> leaves those launches out, so that a forward's time without them shows what each
// costs inside a replayed graph, boundaries and overlap included (NOTES.md, "Where a 32-row
// forward goes, op by op"). Kernel benchmarks time ops alone and L2-warm.
// `op`, or (n > 0) "gemm<n>x<k>", is in the list; the name is only formatted while one is set.
bool skipped(const char* op, std::int64_t n = 0, std::int64_t k = 0) {
  static const std::string list = [] {
    const char* env = std::getenv("WEDLM_CUDA_SKIP");
    std::string l = ",";
    l += env != nullptr ? env : "";
    l += ",";
    if (l.size() > 2) std::fprintf(stderr, "warning: WEDLM_CUDA_SKIP=%s leaves kernels out: results are wrong\n", env);
    return l;
  }();
  if (list.size() <= 2) return false;
  std::string key = ",";
  key += op;
  if (n > 0) key += std::to_string(n) + "x" + std::to_string(k);
  key += ",";
  return list.find(key) != std::string::npos;
}

struct CudaLinear : LinearWeight {
  std::shared_ptr<DeviceMemory> weight;  // bf16 [out_features][in_features]; shared by tied embed/lm_head
  DeviceMemory bias;                     // bf16 [out_features] or empty
  const bf16* w() const { return weight->as<bf16>(); }
};

struct CudaVector : VectorWeight {
  DeviceMemory values;  // fp32
};

struct CudaBuffer : DeviceBuffer {
  DeviceMemory memory;
  std::int64_t rows, cols;
  CudaBuffer(std::int64_t r, std::int64_t c)
      : memory(static_cast<std::size_t>(r * c) * sizeof(bf16)), rows(r), cols(c) {}
  DeviceMatrix view(std::int64_t r, std::int64_t c) override {
    if (r > rows || c > cols) fail("internal: buffer view {}x{} exceeds {}x{}", r, c, rows, cols);
    return DeviceMatrix{memory.get(), r, c, c};
  }
};

// bf16 keys and values laid out [layer][block][kv_head][slot in block][head_dim], as on the CPU.
struct CudaKvCache final : KvCache {
  DeviceMemory keys, values;
  std::size_t layer_elements;
  explicit CudaKvCache(const KvCacheShape& s)
      : KvCache(s),
        layer_elements(static_cast<std::size_t>(s.num_blocks * s.num_kv_heads * s.block_size * s.head_dim)) {
    const std::size_t bytes = static_cast<std::size_t>(s.num_layers) * layer_elements * sizeof(bf16);
    keys = DeviceMemory(bytes);
    values = DeviceMemory(bytes);
    // Never read before written (attention is causal over written slots); zeroed so that a bug
    // shows up as a wrong number rather than as NaN from stale memory.
    WEDLM_CUDA_CHECK(cudaMemset(keys.get(), 0, bytes));
    WEDLM_CUDA_CHECK(cudaMemset(values.get(), 0, bytes));
  }
  bf16* k(std::int64_t layer) { return keys.as<bf16>() + static_cast<std::size_t>(layer) * layer_elements; }
  bf16* v(std::int64_t layer) { return values.as<bf16>() + static_cast<std::size_t>(layer) * layer_elements; }
};

Mat mat(DeviceMatrix m) { return Mat{static_cast<bf16*>(m.data), m.rows, m.cols, m.stride}; }

std::vector<float> to_float_vector(const TensorInfo& t) {
  std::vector<float> v(static_cast<std::size_t>(t.numel()));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = load_as_float(t.data, *t.dtype, i);
  return v;
}

class CudaBackend final : public Backend {
 public:
  CudaBackend() {
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
      fail("no CUDA device is usable ({}); use --device cpu", e != cudaSuccess ? cudaGetErrorString(e) : "none found");
    }
    WEDLM_CUDA_CHECK(cudaSetDevice(0));
    cudaDeviceProp prop{};
    WEDLM_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    if (prop.major < 8) fail("the CUDA backend needs compute capability 8.0 or newer (bf16); {} has {}.{}", prop.name, prop.major, prop.minor);
    sm_count_ = prop.multiProcessorCount;
    if (sm90a_kernels_run()) {
      wgmma_ = WgmmaAttention{attention_wgmma_cluster_capacity(64), attention_wgmma_cluster_capacity(128)};
    }
    name_ = std::string("cuda (") + prop.name + ")";
    WEDLM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    gemm_ = std::make_unique<Gemm>(stream_);
    const char* graphs = std::getenv("WEDLM_CUDA_GRAPHS");
    // Per-op profiling times each op with events, which a replayed graph cannot do.
    graphs_enabled_ = !profiler_.enabled() && !(graphs != nullptr && *graphs == '0');
  }

  ~CudaBackend() override {
    if (stream_ != nullptr) cudaStreamSynchronize(stream_);
    graphs_.clear();
    gemm_.reset();
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  std::string name() const override { return name_; }

  std::unique_ptr<LinearWeight> make_linear(std::span<const TensorInfo* const> parts,
                                            std::span<const TensorInfo* const> biases) override {
    auto w = std::make_unique<CudaLinear>();
    w->in_features = parts.front()->shape[1];
    for (const TensorInfo* p : parts) {
      if (p->shape[1] != w->in_features) fail("internal: fused parts of {} differ in width", p->name);
      w->out_features += p->shape[0];
    }
    // A tied lm_head is the embedding tensor again: one copy on the GPU.
    if (parts.size() == 1 && biases.empty()) {
      auto found = uploaded_.find(parts.front()->data);
      if (found != uploaded_.end()) {
        if (auto shared = found->second.lock()) {
          w->weight = std::move(shared);
          return w;
        }
      }
    }
    w->weight = std::make_shared<DeviceMemory>(static_cast<std::size_t>(w->out_features * w->in_features) * sizeof(bf16));
    std::size_t row = 0;
    for (const TensorInfo* p : parts) {
      upload_bf16(*p, w->weight->as<bf16>() + row * static_cast<std::size_t>(w->in_features));
      row += static_cast<std::size_t>(p->shape[0]);
    }
    if (!biases.empty()) {
      std::vector<bf16> host;
      for (const TensorInfo* b : biases) {
        for (float v : to_float_vector(*b)) host.push_back(__float2bfloat16_rn(v));
      }
      w->bias = DeviceMemory(host.size() * sizeof(bf16));
      WEDLM_CUDA_CHECK(cudaMemcpy(w->bias.get(), host.data(), host.size() * sizeof(bf16), cudaMemcpyHostToDevice));
    }
    if (parts.size() == 1 && biases.empty()) uploaded_[parts.front()->data] = w->weight;
    return w;
  }

  std::unique_ptr<VectorWeight> make_vector(const TensorInfo& t) override {
    auto v = std::make_unique<CudaVector>();
    std::vector<float> host = to_float_vector(t);
    v->size = static_cast<std::int64_t>(host.size());
    v->values = DeviceMemory(host.size() * sizeof(float));
    WEDLM_CUDA_CHECK(cudaMemcpy(v->values.get(), host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice));
    return v;
  }

  std::unique_ptr<DeviceBuffer> alloc(std::int64_t rows, std::int64_t cols) override {
    return std::make_unique<CudaBuffer>(rows, cols);
  }

  std::unique_ptr<KvCache> make_kv_cache(const KvCacheShape& shape) override {
    return std::make_unique<CudaKvCache>(shape);
  }

  void embed(const LinearWeight& table, std::span<const std::int32_t> ids, DeviceMatrix out) override {
    const auto& t = static_cast<const CudaLinear&>(table);
    for (std::int32_t id : ids) {
      if (id < 0 || id >= t.out_features) fail("token id {} is outside the vocabulary (size {})", id, t.out_features);
    }
    const std::int32_t* d_ids = nullptr;
    if (recording_) {
      expect_chunk_span(ids, chunk_ids_, "ids");
      d_ids = area_.ids();
      record_vocab_ = t.out_features;
    } else {
      d_ids = ids_.upload(ids, stream_);
    }
    profiler_.begin(stream_);
    launch_embed(t.w(), d_ids, mat(out), stream_);
    profiler_.end("embed", stream_);
  }

  void rmsnorm(DeviceMatrix x, const VectorWeight& w, float eps, DeviceMatrix out) override {
    profiler_.begin(stream_);
    launch_rmsnorm(mat(x), static_cast<const CudaVector&>(w).values.as<float>(), eps, mat(out), stream_);
    profiler_.end("rmsnorm", stream_);
  }

  void add_rmsnorm(DeviceMatrix residual, DeviceMatrix delta, const VectorWeight& w, float eps,
                   DeviceMatrix out) override {
    profiler_.begin(stream_);
    launch_add_rmsnorm(mat(residual), mat(delta), static_cast<const CudaVector&>(w).values.as<float>(), eps, mat(out),
                       stream_);
    profiler_.end("add_rmsnorm", stream_);
  }

  void add(DeviceMatrix residual, DeviceMatrix delta) override { launch_add(mat(residual), mat(delta), stream_); }

  void copy(DeviceMatrix from, DeviceMatrix to) override {
    if (from.rows != to.rows || from.cols != to.cols) fail("internal: copy of {}x{} into {}x{}", from.rows, from.cols, to.rows, to.cols);
    if (from.rows == 0) return;
    WEDLM_CUDA_CHECK(cudaMemcpy2DAsync(to.data, static_cast<std::size_t>(to.stride) * sizeof(bf16), from.data,
                                       static_cast<std::size_t>(from.stride) * sizeof(bf16),
                                       static_cast<std::size_t>(from.cols) * sizeof(bf16),
                                       static_cast<std::size_t>(from.rows), cudaMemcpyDeviceToDevice, stream_));
  }

  void add_rmsnorm_into(DeviceMatrix residual, DeviceMatrix delta, DeviceMatrix residual_out, const VectorWeight& w,
                        float eps, DeviceMatrix out) override {
    profiler_.begin(stream_);
    if (!skipped("norm")) {
      launch_add_rmsnorm_into(mat(residual), mat(delta), mat(residual_out), static_cast<const CudaVector&>(w).values.as<float>(),
                              eps, mat(out), stream_);
    }
    profiler_.end("add_rmsnorm", stream_);
  }

  // With few rows, the sublayer's add_rmsnorm runs in the GEMV's prologue (every block
  // normalizes the rows itself): one kernel and one kernel boundary fewer.
  void normed_linear(const NormedInput& in, const LinearWeight& weight, DeviceMatrix out) override {
    const GemmArgs g = gemm_args(in.normed, weight, out);
    if (!separate(in) || !try_fused(g, with_input(g, in), "add_rmsnorm+linear")) Backend::normed_linear(in, weight, out);
  }

  void normed_linear_silu_mul(const NormedInput& in, const LinearWeight& gate_up, DeviceMatrix scratch,
                              DeviceMatrix out) override {
    const GemmArgs g = gemm_args(in.normed, gate_up, scratch);
    if (!separate(in) || !try_fused(g, with_silu(with_input(g, in), out), "add_rmsnorm+linear+silu_mul")) {
      Backend::normed_linear_silu_mul(in, gate_up, scratch, out);
    }
  }

  void linear(DeviceMatrix x, const LinearWeight& weight, DeviceMatrix out) override {
    const GemmArgs g = gemm_args(x, weight, out);
    gemm_->prepare(g);  // candidate timing stays outside the profiled region
    profiler_.begin(stream_);
    if (!skipped("gemm", g.n, g.k)) gemm_->run(g);
    profiler_.end(profiler_.enabled() ? gemm_name(g, "linear") : std::string(), stream_);
  }

  // One kernel when our GEMV runs the gate/up shape; cuBLASLt + silu_mul otherwise.
  void linear_silu_mul(DeviceMatrix x, const LinearWeight& gate_up, DeviceMatrix scratch, DeviceMatrix out) override {
    const GemmArgs g = gemm_args(x, gate_up, scratch);
    if (!try_fused(g, with_silu(g, out), "linear+silu_mul")) Backend::linear_silu_mul(x, gate_up, scratch, out);
  }

  void qk_norm_rope(DeviceMatrix qkv, const AttentionShape& s, const VectorWeight* q_norm, const VectorWeight* k_norm,
                    float eps, std::span<const std::int32_t> positions, double rope_theta) override {
    const QkNormRopeArgs a = rope_args(qkv, s, QkRope{q_norm, k_norm, eps, positions, rope_theta});
    profiler_.begin(stream_);
    launch_qk_norm_rope(a, stream_);
    profiler_.end("qk_norm_rope", stream_);
  }

  void attention(DeviceMatrix qkv, const AttentionShape& shape, KvCache& cache, std::int64_t layer,
                 std::span<const AttentionSequence> sequences, DeviceMatrix out) override {
    run_attention(qkv, shape, nullptr, cache, layer, sequences, out);
  }

  // The K/V scatter rides along in the rope kernel (one launch fewer a layer).
  void rope_attention(DeviceMatrix qkv, const AttentionShape& shape, const QkRope& rope, KvCache& cache,
                      std::int64_t layer, std::span<const AttentionSequence> sequences, DeviceMatrix out) override {
    run_attention(qkv, shape, &rope, cache, layer, sequences, out);
  }

  void silu_mul(DeviceMatrix gate_up, DeviceMatrix out) override {
    profiler_.begin(stream_);
    if (!skipped("silu")) launch_silu_mul(mat(gate_up), mat(out), stream_);
    profiler_.end("silu_mul", stream_);
  }

  void gather_rows(DeviceMatrix x, std::span<const std::int32_t> rows, DeviceMatrix out) override {
    not_while_recording("gather_rows");
    for (std::int32_t r : rows) {
      if (r < 0 || r >= x.rows) fail("internal: gather row {} outside {} rows", r, x.rows);
    }
    profiler_.begin(stream_);
    launch_gather_rows(mat(x), gather_.upload(rows, stream_), mat(out), stream_);
    profiler_.end("gather_rows", stream_);
  }

  // bf16 rows go to a pinned buffer (half the bytes of fp32, and pinned memory copies at full
  // PCIe speed instead of through the driver's pageable staging), then widen on the host.
  void download(DeviceMatrix x, float* host) override {
    not_while_recording("download");
    const std::int64_t n = x.rows * x.cols;
    std::uint16_t* bits = pinned_.ensure<std::uint16_t>(static_cast<std::size_t>(n));
    profiler_.begin(stream_);
    WEDLM_CUDA_CHECK(cudaMemcpy2DAsync(bits, static_cast<std::size_t>(x.cols) * sizeof(bf16), x.data,
                                       static_cast<std::size_t>(x.stride) * sizeof(bf16),
                                       static_cast<std::size_t>(x.cols) * sizeof(bf16), static_cast<std::size_t>(x.rows),
                                       cudaMemcpyDeviceToHost, stream_));
    profiler_.end("download", stream_);
    WEDLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
    profiler_.collect();
#pragma omp parallel for if (n > (1 << 16))
    for (std::int64_t i = 0; i < n; ++i) host[i] = bf16_to_float(bits[i]);
  }

  void summarize_logits(DeviceMatrix logits, float* entropy, std::int32_t* argmax) override {
    not_while_recording("summarize_logits");
    const std::size_t rows = static_cast<std::size_t>(logits.rows);
    if (rows == 0) return;
    const std::size_t bytes = rows * (sizeof(float) + sizeof(std::int32_t));
    if (summary_.bytes() < bytes) summary_ = DeviceMemory(bytes * 2);
    float* d_entropy = summary_.as<float>();
    auto* d_argmax = reinterpret_cast<std::int32_t*>(d_entropy + rows);
    profiler_.begin(stream_);
    launch_summarize_logits(mat(logits), d_entropy, d_argmax, stream_);
    profiler_.end("summarize_logits", stream_);
    // Both arrays in one copy, into page-locked memory (a pageable destination costs a staged,
    // synchronous copy each).
    auto* host = summary_host_.ensure<float>(rows * 2);
    WEDLM_CUDA_CHECK(cudaMemcpyAsync(host, d_entropy, bytes, cudaMemcpyDeviceToHost, stream_));
    WEDLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
    profiler_.collect();
    std::copy_n(host, rows, entropy);
    std::memcpy(argmax, host + rows, rows * sizeof(std::int32_t));
  }

  // Only the tokens come back: a sampled row is ~300 KB of bf16 and ~1-10 ms of host time.
  void sample_logits(DeviceMatrix logits, std::span<const RowDraw> draws, std::int32_t* tokens) override {
    not_while_recording("sample_logits");
    const std::size_t rows = static_cast<std::size_t>(logits.rows);
    if (draws.size() != rows) throw std::logic_error("sample_logits: one draw per row");
    if (rows == 0) return;
    if (!sample_logits_supported(logits.cols) || logits.rows > kSampleMaxRows) {
      Backend::sample_logits(logits, draws, tokens);
      return;
    }
    // One page-locked buffer: the parameters go up from it, tokens and statuses come back into
    // it (one copy each way).
    auto* host_params = sample_host_.ensure<SampleParams>(rows * 2);
    for (std::size_t r = 0; r < rows; ++r) {
      const RowDraw& d = draws[r];
      if (!(d.temperature > 0)) throw std::logic_error("sample_logits: a row with temperature 0");
      host_params[r] = {d.temperature, d.top_p, d.uniform, d.top_k, 0};
    }
    const std::size_t bytes = rows * (sizeof(SampleParams) + 2 * sizeof(std::int32_t));
    if (sample_area_.bytes() < bytes) sample_area_ = DeviceMemory(bytes * 2);
    auto* d_params = sample_area_.as<SampleParams>();
    auto* d_tokens = reinterpret_cast<std::int32_t*>(d_params + rows);
    std::int32_t* d_status = d_tokens + rows;
    auto* host_results = reinterpret_cast<std::int32_t*>(host_params + rows);  // tokens, then statuses
    WEDLM_CUDA_CHECK(cudaMemcpyAsync(d_params, host_params, rows * sizeof(SampleParams), cudaMemcpyHostToDevice,
                                     stream_));
    profiler_.begin(stream_);
    launch_sample_logits(mat(logits), d_params, d_tokens, d_status, stream_);
    profiler_.end("sample_logits", stream_);
    WEDLM_CUDA_CHECK(cudaMemcpyAsync(host_results, d_tokens, rows * 2 * sizeof(std::int32_t), cudaMemcpyDeviceToHost,
                                     stream_));
    WEDLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
    profiler_.collect();
    std::copy_n(host_results, rows, tokens);
    for (const std::int32_t* status = host_results + rows; status != host_results + 2 * rows; ++status) {
      if (*status == kSampleNan) fail("cannot sample: the logits row holds NaN");
      if (*status == kSampleMaxNotFinite) fail("cannot sample: the largest logit is not finite");
    }
  }

  // A chunk of at most StepArea::kMaxRows rows runs as one CUDA graph per (owner, rows, cache,
  // tile size): eagerly the first time (GEMM candidates are timed, kernels configured), recorded
  // the second time, replayed from then on with the chunk's data copied into the step area.
  bool begin_chunk(const ChunkInputs& in) override {
    const std::int64_t rows = static_cast<std::int64_t>(in.ids.size());
    if (!graphs_enabled_ || rows == 0 || rows > StepArea::kMaxRows || in.cache == nullptr) return false;
    auto& cache = static_cast<CudaKvCache&>(*in.cache);
    chunk_plan_ = make_plan(in.sequences, rows, in.attention, cache.shape());
    if (area_.ensure(in.attention, sm_count_, chunk_plan_.work_at - chunk_plan_.tables_at)) {
      // Recorded graphs point into the old area.
      WEDLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
      graphs_.clear();
    }
    if (!area_.fill(in.ids, in.positions, chunk_plan_)) return false;
    const KvCacheShape& c = cache.shape();
    const StepGraphs::Key key = {reinterpret_cast<std::intptr_t>(in.owner), rows,
                                 reinterpret_cast<std::intptr_t>(cache.k(0)), reinterpret_cast<std::intptr_t>(cache.v(0)),
                                 c.num_layers, c.num_kv_heads, c.head_dim, c.block_size, c.num_blocks,
                                 in.attention.num_heads, in.attention.num_kv_heads, in.attention.head_dim,
                                 chunk_plan_.m_tile, chunk_plan_.cluster, chunk_plan_.wgmma ? 1 : 0,
                                 chunk_plan_.tile_heads};
    if (const StepGraphs::Entry* found = graphs_.find(key)) {
      for (std::int32_t id : in.ids) {
        if (id < 0 || id >= found->vocab) fail("token id {} is outside the vocabulary (size {})", id, found->vocab);
      }
      area_.upload(stream_);
      graphs_.launch(*found, stream_, true);
      return true;
    }
    if (!graphs_.seen_before(key)) return false;
    area_.upload(stream_);
    chunk_ids_ = in.ids;
    chunk_positions_ = in.positions;
    record_key_ = key;
    record_vocab_ = 0;
    gemm_->set_tuning(false);  // timing candidates would synchronize inside the capture
    graphs_.begin_capture(stream_);
    recording_ = true;
    return false;
  }

  void end_chunk(bool completed) override {
    if (!recording_) return;
    recording_ = false;
    gemm_->set_tuning(true);
    if (!completed) {
      graphs_.abandon_capture(stream_);
      return;
    }
    // The capture ran nothing: launching the new graph is this chunk's execution.
    graphs_.launch(graphs_.end_capture(stream_, record_key_, record_vocab_), stream_, false);
  }

  void forget_owner(const void* owner) override {
    WEDLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
    graphs_.forget(reinterpret_cast<std::intptr_t>(owner));
  }

  void set_graphs_enabled(bool on) { graphs_enabled_ = on && !profiler_.enabled(); }
  void set_gemv_mode(GemvMode mode) { gemm_->set_gemv_mode(mode); }
  void force_gemv_variant(int variant) { gemm_->force_gemv_variant(variant); }
  GraphStats graph_stats() const { return {graphs_.recorded(), graphs_.replayed()}; }

 private:
  static GemmArgs gemm_args(DeviceMatrix x, const LinearWeight& weight, DeviceMatrix out) {
    const auto& w = static_cast<const CudaLinear&>(weight);
    GemmArgs g;
    g.x = static_cast<const bf16*>(x.data);
    g.ldx = x.stride;
    g.w = w.w();
    g.bias = w.bias.get() != nullptr ? w.bias.as<bf16>() : nullptr;
    g.out = static_cast<bf16*>(out.data);
    g.ldout = out.stride;
    g.rows = x.rows;
    g.n = w.out_features;
    g.k = w.in_features;
    return g;
  }

  // The fused prologue reads the residual in every block while block 0 writes residual_out.
  static bool separate(const NormedInput& in) {
    return in.residual_out.data != in.residual.data && (in.delta.rows == 0 || in.residual_out.data != in.delta.data);
  }

  // Plans `g` crediting the fusion, then runs `fused` in one kernel if the plan's GEMV takes it;
  // false (nothing run) otherwise.
  bool try_fused(const GemmArgs& g, const GemmArgs& fused, const char* name) {
    gemm_->prepare(g, &fused);  // candidate timing stays outside the profiled region
    profiler_.begin(stream_);
    const bool done = gemm_->run_fused(g, fused);
    profiler_.end(!profiler_.enabled() ? std::string() : done ? gemm_name(g, name) : "(not fused)", stream_);
    return done;
  }

  static GemmArgs with_silu(GemmArgs g, DeviceMatrix out) {
    g.silu_mul = true;
    g.out = static_cast<bf16*>(out.data);
    g.ldout = out.stride;
    return g;
  }

  static GemmArgs with_input(GemmArgs g, const NormedInput& in) {
    g.in_residual = static_cast<const bf16*>(in.residual.data);
    g.in_residual_stride = in.residual.stride;
    g.in_delta = in.delta.rows > 0 ? static_cast<const bf16*>(in.delta.data) : nullptr;
    g.in_delta_stride = in.delta.stride;
    g.in_residual_out = static_cast<bf16*>(in.residual_out.data);
    g.in_residual_out_stride = in.residual_out.stride;
    g.in_norm = static_cast<const CudaVector*>(in.norm)->values.as<float>();
    g.in_eps = in.eps;
    return g;
  }

  std::string gemm_name(const GemmArgs& g, const char* op) {
    return std::string(op) + " " + std::to_string(g.n) + "x" + std::to_string(g.k) + " rows " + std::to_string(g.rows) +
           " " + gemm_->path(g);
  }

  // The fields of an attention launch that do not depend on how the plan reaches the device
  // (uploaded per call, or read from a graph's fixed step area).
  static AttentionArgs attention_args(DeviceMatrix qkv, const AttentionShape& shape, CudaKvCache& cache,
                                      std::int64_t layer) {
    AttentionArgs a;
    a.qkv = static_cast<const bf16*>(qkv.data);
    a.qkv_stride = qkv.stride;
    a.k_cache = cache.k(layer);
    a.v_cache = cache.v(layer);
    a.num_heads = static_cast<int>(shape.num_heads);
    a.num_kv_heads = static_cast<int>(shape.num_kv_heads);
    a.head_dim = static_cast<int>(shape.head_dim);
    a.block_size = static_cast<int>(cache.shape().block_size);
    a.cache_rows = cache.shape().num_blocks * cache.shape().num_kv_heads * cache.shape().block_size;
    return a;
  }

  static void expect_chunk_span(std::span<const std::int32_t> got, std::span<const std::int32_t> chunk, const char* what) {
    if (got.data() != chunk.data() || got.size() != chunk.size()) {
      fail("internal: an op of a recorded chunk got other {} than begin_chunk", what);
    }
  }
  void not_while_recording(const char* op) const {
    if (recording_) fail("internal: {} inside a recorded chunk", op);
  }

  QkNormRopeArgs rope_args(DeviceMatrix qkv, const AttentionShape& s, const QkRope& rope) {
    if (s.head_dim % 2 != 0 || s.head_dim > kMaxHeadDim) {
      fail("the CUDA RoPE kernel needs an even head_dim of at most {}, got {}", kMaxHeadDim, s.head_dim);
    }
    QkNormRopeArgs a;
    a.qkv = mat(qkv);
    a.num_heads = static_cast<int>(s.num_heads);
    a.num_kv_heads = static_cast<int>(s.num_kv_heads);
    a.head_dim = static_cast<int>(s.head_dim);
    a.q_norm = rope.q_norm ? static_cast<const CudaVector*>(rope.q_norm)->values.as<float>() : nullptr;
    a.k_norm = rope.k_norm ? static_cast<const CudaVector*>(rope.k_norm)->values.as<float>() : nullptr;
    a.eps = rope.eps;
    if (recording_) {
      expect_chunk_span(rope.positions, chunk_positions_, "positions");
      a.positions = area_.positions();
    } else {
      a.positions = positions_.upload(rope.positions, stream_);
    }
    a.inv_freq = inverse_frequencies(rope.theta, s.head_dim);
    return a;
  }

  // Writes the chunk's K/V to the cache (through the rope kernel when `rope` is given) and runs
  // attention. While a chunk is recorded, the plan made in begin_chunk lives in the step area;
  // the grids are sized for the largest plan of this row count, the real counts are read on the
  // device. Otherwise the plan is uploaded when the sequences changed.
  void run_attention(DeviceMatrix qkv, const AttentionShape& shape, const QkRope* rope, KvCache& base,
                     std::int64_t layer, std::span<const AttentionSequence> sequences, DeviceMatrix out) {
    auto& cache = static_cast<CudaKvCache&>(base);
    AttentionArgs a = attention_args(qkv, shape, cache, layer);
    const std::int32_t* row_slot = nullptr;
    if (recording_) {
      if (qkv.rows != chunk_plan_.rows || static_cast<std::int64_t>(sequences.size()) * 4 !=
                                              chunk_plan_.tables_at - chunk_plan_.sequences_at) {
        fail("internal: the attention of a recorded chunk differs from its begin_chunk");
      }
      row_slot = area_.row_slot();
      a.sequences = reinterpret_cast<const AttnSequence*>(area_.sequences());
      a.tables = area_.tables();
      a.work = reinterpret_cast<const AttnWork*>(area_.work());
      // Grids for every plan this graph may replay: same rows, kernel, tile_heads and cluster (its key).
      a.work_count = attention_work_capacity(chunk_plan_.tile_heads, chunk_plan_.wgmma, sm_count_, chunk_plan_.cluster);
      a.combine = reinterpret_cast<const AttnCombine*>(area_.combine());
      a.combine_count = chunk_plan_.tile_heads;  // a combine item is a split tile
      a.combine_units = area_.combine_units_capacity(qkv.rows, chunk_plan_.m_tile);
      a.combine_blocks = area_.combine_blocks(qkv.rows, chunk_plan_.m_tile, chunk_plan_.tile_heads);
      a.counts = area_.counts();
      a.partial_o = area_.partial_o();
      a.partial_ml = area_.partial_ml();
      a.m_tile = chunk_plan_.m_tile;
      a.cluster = chunk_plan_.cluster;
      a.wgmma = chunk_plan_.wgmma;
    } else {
      // Uploaded (when it changed) before the rope kernel below is launched: the attention kernel
      // reads the plan before its pdl_wait (attention_mma.cu).
      const AttentionPlan& plan = plan_for(sequences, qkv.rows, shape, cache.shape());
      const std::int32_t* packed = plan_device_;
      row_slot = packed + plan.row_slot_at;
      a.sequences = reinterpret_cast<const AttnSequence*>(packed + plan.sequences_at);
      a.tables = packed + plan.tables_at;
      a.work = reinterpret_cast<const AttnWork*>(packed + plan.work_at);
      a.work_count = plan.work_count;
      a.combine = reinterpret_cast<const AttnCombine*>(packed + plan.combine_at);
      a.combine_count = plan.combine_count;
      a.combine_units = plan.combine_units;
      a.partial_o = partial_o_.as<float>();
      a.partial_ml = partial_ml_.as<float>();
      a.m_tile = plan.m_tile;
      a.cluster = plan.cluster;
      a.wgmma = plan.wgmma;
    }
    a.out = static_cast<bf16*>(out.data);
    a.out_stride = out.stride;
    const int block_size = static_cast<int>(cache.shape().block_size);
    profiler_.begin(stream_);
    if (rope != nullptr) {
      QkNormRopeArgs r = rope_args(qkv, shape, *rope);
      r.k_cache = cache.k(layer);
      r.v_cache = cache.v(layer);
      r.row_slot = row_slot;
      r.block_size = block_size;
      if (!skipped("rope")) launch_qk_norm_rope(r, stream_);
    } else {
      launch_kv_scatter(static_cast<const bf16*>(qkv.data), qkv.stride, qkv.rows, row_slot,
                        static_cast<int>(shape.num_heads), static_cast<int>(shape.num_kv_heads),
                        static_cast<int>(shape.head_dim), block_size, cache.k(layer), cache.v(layer), stream_);
    }
    profiler_.end(rope != nullptr ? "qk_norm_rope+kv_scatter" : "kv_scatter", stream_);
    profiler_.begin(stream_);
    if (!skipped("attention")) launch_attention_tiles(a, stream_);
    profiler_.end(profiler_.enabled() ? "attention rows " + std::to_string(qkv.rows) + " tile " + std::to_string(a.m_tile) +
                                            (a.wgmma ? " wgmma" : "") + " cluster " + std::to_string(a.cluster) +
                                            " ctas " + std::to_string(a.work_count)
                                      : std::string(),
                  stream_);
    profiler_.begin(stream_);
    if (!skipped("combine")) launch_attention_combine(a, stream_);
    profiler_.end(profiler_.enabled() ? "combine rows " + std::to_string(qkv.rows) : std::string(), stream_);
  }

  // Converts a checkpoint tensor to bf16 on the GPU: bf16 copies straight from the (mapped) file;
  // f32/f16 go up in chunks and are converted by a kernel, so no host copy of the model is made.
  void upload_bf16(const TensorInfo& t, bf16* dest) {
    const std::size_t n = static_cast<std::size_t>(t.numel());
    if (*t.dtype == DType::BF16) {
      WEDLM_CUDA_CHECK(cudaMemcpy(dest, t.data, n * sizeof(bf16), cudaMemcpyHostToDevice));
      return;
    }
    const std::size_t elem = dtype_size(*t.dtype);
    constexpr std::size_t kChunk = std::size_t{16} << 20;  // elements
    if (staging_.bytes() < std::min(n, kChunk) * elem) staging_ = DeviceMemory(std::min(n, kChunk) * 4);
    for (std::size_t at = 0; at < n; at += kChunk) {
      const std::size_t count = std::min(kChunk, n - at);
      WEDLM_CUDA_CHECK(cudaMemcpy(staging_.get(), t.data + at * elem, count * elem, cudaMemcpyHostToDevice));
      if (*t.dtype == DType::F32) {
        launch_f32_to_bf16(staging_.as<float>(), static_cast<std::int64_t>(count), dest + at, nullptr);
      } else {
        launch_f16_to_bf16(staging_.as<std::uint16_t>(), static_cast<std::int64_t>(count), dest + at, nullptr);
      }
      WEDLM_CUDA_CHECK(cudaDeviceSynchronize());  // staging is reused by the next chunk
    }
  }

  // inv_freq[i] = theta^(-2i/d) computed exactly as the CPU backend does (fp32 pow on the host),
  // so both backends rotate by the same angles.
  const float* inverse_frequencies(double theta, std::int64_t d) {
    DeviceMemory& table = inv_freq_tables_[{theta, d}];  // never freed: recorded graphs point at it
    if (table.get() == nullptr) {
      std::vector<float> host(static_cast<std::size_t>(d / 2));
      for (std::int64_t i = 0; i < d / 2; ++i) {
        const float exponent = static_cast<float>(2 * i) / static_cast<float>(d);
        host[static_cast<std::size_t>(i)] = 1.0f / std::pow(static_cast<float>(theta), exponent);
      }
      table = DeviceMemory(host.size() * sizeof(float));
      WEDLM_CUDA_CHECK(cudaMemcpyAsync(table.get(), host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice, stream_));
      WEDLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
    }
    return table.as<float>();
  }

  AttentionPlan make_plan(std::span<const AttentionSequence> sequences, std::int64_t rows, const AttentionShape& shape,
                          const KvCacheShape& cache) const {
    return plan_attention(sequences, rows, shape, cache, sm_count_,
                          attention_cluster_capacity(static_cast<int>(shape.head_dim)), wgmma_ ? &*wgmma_ : nullptr);
  }

  // The plan depends only on the sequences (rows, slots, block tables): rebuilt and uploaded
  // once per forward, reused by every layer.
  const AttentionPlan& plan_for(std::span<const AttentionSequence> sequences, std::int64_t rows,
                                const AttentionShape& shape, const KvCacheShape& cache) {
    signature_.clear();
    signature_.push_back(static_cast<std::int32_t>(rows));
    signature_.push_back(static_cast<std::int32_t>(shape.num_heads));
    signature_.push_back(static_cast<std::int32_t>(shape.num_kv_heads));
    signature_.push_back(static_cast<std::int32_t>(shape.head_dim));
    signature_.push_back(static_cast<std::int32_t>(cache.block_size));
    signature_.push_back(static_cast<std::int32_t>(cache.num_blocks));
    for (const AttentionSequence& s : sequences) {
      signature_.push_back(static_cast<std::int32_t>(s.row_begin));
      signature_.push_back(static_cast<std::int32_t>(s.rows));
      signature_.push_back(static_cast<std::int32_t>(s.cache_start));
      signature_.push_back(static_cast<std::int32_t>(s.block_table.size()));
      signature_.insert(signature_.end(), s.block_table.begin(), s.block_table.end());
    }
    if (signature_ != plan_signature_) {
      plan_ = make_plan(sequences, rows, shape, cache);
      plan_signature_ = signature_;
      const std::size_t dp = static_cast<std::size_t>(padded_head_dim(static_cast<int>(shape.head_dim)));
      const std::size_t slots = static_cast<std::size_t>(plan_.partial_slots) * static_cast<std::size_t>(plan_.m_tile);
      if (slots * dp * sizeof(float) > partial_o_.bytes()) partial_o_ = DeviceMemory(slots * dp * sizeof(float) * 2);
      if (slots * 2 * sizeof(float) > partial_ml_.bytes()) partial_ml_ = DeviceMemory(slots * 2 * sizeof(float) * 2);
      plan_device_ = plan_upload_.upload(plan_.packed, stream_);
    }
    return plan_;
  }

  std::string name_;
  int sm_count_ = 0;
  std::optional<WgmmaAttention> wgmma_;  // set where the warpgroup-MMA attention kernel runs
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<Gemm> gemm_;
  OpProfiler profiler_;
  std::map<const void*, std::weak_ptr<DeviceMemory>> uploaded_;
  DeviceMemory staging_, partial_o_, partial_ml_, summary_, sample_area_;
  std::map<std::pair<double, std::int64_t>, DeviceMemory> inv_freq_tables_;
  PinnedMemory pinned_;  // logits on their way to the caller
  PinnedMemory summary_host_;  // summarize_logits: entropies, then argmaxes
  PinnedMemory sample_host_;  // sample_logits: parameters up, then tokens and statuses down
  DeviceArray<std::int32_t> ids_, positions_, gather_, plan_upload_;
  std::vector<std::int32_t> signature_, plan_signature_;
  AttentionPlan plan_;
  const std::int32_t* plan_device_ = nullptr;
  // CUDA graphs of whole chunks.
  bool graphs_enabled_ = true;
  bool recording_ = false;
  StepArea area_;
  StepGraphs graphs_;
  AttentionPlan chunk_plan_;
  std::span<const std::int32_t> chunk_ids_, chunk_positions_;
  StepGraphs::Key record_key_;
  std::int64_t record_vocab_ = 0;
};

}  // namespace

CopyBandwidth measure_copy_bandwidth(std::size_t bytes, int repeats) {
  DeviceMemory a(bytes), b(bytes);
  WEDLM_CUDA_CHECK(cudaMemset(a.get(), 1, bytes));
  WEDLM_CUDA_CHECK(cudaMemset(b.get(), 2, bytes));
  cudaEvent_t start, stop;
  WEDLM_CUDA_CHECK(cudaEventCreate(&start));
  WEDLM_CUDA_CHECK(cudaEventCreate(&stop));
  std::vector<float> ms;
  for (int i = 0; i < repeats + 2; ++i) {  // two warm-up copies
    WEDLM_CUDA_CHECK(cudaEventRecord(start));
    WEDLM_CUDA_CHECK(cudaMemcpyAsync(i % 2 ? a.get() : b.get(), i % 2 ? b.get() : a.get(), bytes, cudaMemcpyDeviceToDevice));
    WEDLM_CUDA_CHECK(cudaEventRecord(stop));
    WEDLM_CUDA_CHECK(cudaEventSynchronize(stop));
    float t = 0;
    WEDLM_CUDA_CHECK(cudaEventElapsedTime(&t, start, stop));
    if (i >= 2) ms.push_back(t);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(ms.begin(), ms.end());
  return {2.0 * static_cast<double>(bytes) / (ms[ms.size() / 2] * 1e-3) / 1e9, bytes};
}

}  // namespace cuda

bool cuda_device_available() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

std::unique_ptr<Backend> make_cuda_backend() { return std::make_unique<cuda::CudaBackend>(); }

namespace cuda {

void set_graphs_enabled(Backend& backend, bool on) { dynamic_cast<CudaBackend&>(backend).set_graphs_enabled(on); }
bool samples_on_device(std::int64_t vocab) { return sample_logits_supported(vocab); }
void set_gemv_mode(Backend& backend, GemvMode mode) { dynamic_cast<CudaBackend&>(backend).set_gemv_mode(mode); }
void force_gemv_variant(Backend& backend, int variant) {
  dynamic_cast<CudaBackend&>(backend).force_gemv_variant(variant);
}
GraphStats graph_stats(const Backend& backend) { return dynamic_cast<const CudaBackend&>(backend).graph_stats(); }

}  // namespace cuda

}  // namespace wedlm
