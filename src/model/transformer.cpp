#include "model/transformer.h"

#include <algorithm>
#include <numeric>

#include "util/error.h"

namespace wedlm {

struct Transformer::Layer {
  std::unique_ptr<VectorWeight> attn_norm, q_norm, k_norm, mlp_norm;
  std::unique_ptr<LinearWeight> qkv, o_proj, gate_up, down_proj;
};

Transformer::Transformer(const Checkpoint& ck, Backend& backend, std::int64_t max_rows)
    : config_(ck.config), backend_(backend), max_rows_(max_rows) {
  const ModelConfig& c = config_;
  // The final norm reads the last layer's output (config parsing already requires layers).
  if (ck.tensors.layers.empty()) fail("{}: a model needs at least one layer", ck.dir);
  attention_shape_ = {c.num_heads, c.num_kv_heads, c.head_dim};
  const TensorInfo* embed_parts[] = {ck.tensors.embed};
  embed_ = backend.make_linear(embed_parts, {});
  const TensorInfo* head_parts[] = {ck.tensors.lm_head};
  lm_head_ = backend.make_linear(head_parts, {});
  final_norm_ = backend.make_vector(*ck.tensors.final_norm);
  for (const LayerTensors& t : ck.tensors.layers) {
    auto layer = std::make_unique<Layer>();
    layer->attn_norm = backend.make_vector(*t.attn_norm);
    layer->mlp_norm = backend.make_vector(*t.mlp_norm);
    if (t.q_norm) layer->q_norm = backend.make_vector(*t.q_norm);
    if (t.k_norm) layer->k_norm = backend.make_vector(*t.k_norm);
    const TensorInfo* qkv[] = {t.q_proj, t.k_proj, t.v_proj};
    const TensorInfo* qkv_bias[] = {t.q_bias, t.k_bias, t.v_bias};
    layer->qkv = backend.make_linear(qkv, t.q_bias ? std::span<const TensorInfo* const>(qkv_bias)
                                                   : std::span<const TensorInfo* const>());
    const TensorInfo* o[] = {t.o_proj};
    layer->o_proj = backend.make_linear(o, {});
    const TensorInfo* gate_up[] = {t.gate_proj, t.up_proj};
    layer->gate_up = backend.make_linear(gate_up, {});
    const TensorInfo* down[] = {t.down_proj};
    layer->down_proj = backend.make_linear(down, {});
    layers_.push_back(std::move(layer));
  }
  const std::int64_t qkv_cols = c.q_size() + 2 * c.kv_size();
  residual_ = backend.alloc(max_rows_, c.hidden_size);
  residual_other_ = backend.alloc(max_rows_, c.hidden_size);
  normed_ = backend.alloc(max_rows_, c.hidden_size);
  qkv_ = backend.alloc(max_rows_, qkv_cols);
  attn_out_ = backend.alloc(max_rows_, c.q_size());
  proj_out_ = backend.alloc(max_rows_, c.hidden_size);
  gate_up_ = backend.alloc(max_rows_, 2 * c.intermediate_size);
  mlp_hidden_ = backend.alloc(max_rows_, c.intermediate_size);
}

// Recorded chunks point at this transformer's buffers and weights.
Transformer::~Transformer() { backend_.forget_owner(this); }

std::unique_ptr<KvCache> Transformer::make_kv_cache(std::int64_t capacity, std::int64_t block_size) {
  if (capacity <= 0) fail("KV cache capacity must be positive, got {}", capacity);
  if (block_size <= 0) fail("KV block size must be positive, got {}", block_size);
  const std::int64_t blocks = (capacity + block_size - 1) / block_size;
  return backend_.make_kv_cache({config_.num_layers, config_.num_kv_heads, config_.head_dim, block_size, blocks});
}

void Transformer::run_chunk(KvCache& cache, std::span<const std::int32_t> ids,
                            std::span<const std::int32_t> positions, std::span<const AttentionSequence> sequences) {
  const ChunkInputs in{this, &cache, attention_shape_, ids, positions, sequences};
  if (backend_.begin_chunk(in)) return;  // replayed
  try {
    run_layers(cache, ids, positions, sequences);
  } catch (...) {
    backend_.end_chunk(false);
    throw;
  }
  backend_.end_chunk(true);
}

void Transformer::run_layers(KvCache& cache, std::span<const std::int32_t> ids,
                             std::span<const std::int32_t> positions, std::span<const AttentionSequence> sequences) {
  const ModelConfig& c = config_;
  const std::int64_t rows = static_cast<std::int64_t>(ids.size());
  const float eps = static_cast<float>(c.rms_norm_eps);
  DeviceMatrix residual = residual_->view(rows, c.hidden_size);
  DeviceMatrix normed = normed_->view(rows, c.hidden_size);
  DeviceMatrix qkv = qkv_->view(rows, c.q_size() + 2 * c.kv_size());
  DeviceMatrix attn_out = attn_out_->view(rows, c.q_size());
  DeviceMatrix proj_out = proj_out_->view(rows, c.hidden_size);
  DeviceMatrix gate_up = gate_up_->view(rows, 2 * c.intermediate_size);
  DeviceMatrix mlp_hidden = mlp_hidden_->view(rows, c.intermediate_size);

  // The residual stream ping-pongs between two buffers: each sublayer's input normalization
  // writes residual + delta to the other one (a fused GEMM may then read the old one in every
  // block while one block writes the new).
  DeviceMatrix other = residual_other_->view(rows, c.hidden_size);
  DeviceMatrix no_delta{proj_out.data, 0, c.hidden_size, proj_out.stride};
  auto next_input = [&](DeviceMatrix delta, const VectorWeight& norm) {
    const NormedInput in{residual, delta, other, normed, &norm, eps};
    std::swap(residual, other);
    return in;
  };
  backend_.embed(*embed_, ids, residual);
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    Layer& l = *layers_[i];
    backend_.normed_linear(next_input(i == 0 ? no_delta : proj_out, *l.attn_norm), *l.qkv, qkv);
    const QkRope rope{l.q_norm.get(), l.k_norm.get(), eps, positions, c.rope_theta};
    backend_.rope_attention(qkv, attention_shape_, rope, cache, static_cast<std::int64_t>(i), sequences, attn_out);
    backend_.linear(attn_out, *l.o_proj, proj_out);
    backend_.normed_linear_silu_mul(next_input(proj_out, *l.mlp_norm), *l.gate_up, gate_up, mlp_hidden);
    backend_.linear(mlp_hidden, *l.down_proj, proj_out);
  }
  backend_.add_rmsnorm(residual, proj_out, *final_norm_, eps, normed);
  // `normed` now holds the final-normed hidden states of this chunk.
}

void Transformer::validate(const KvCache& cache, const ForwardRequest& req) const {
  const std::int64_t rows = static_cast<std::int64_t>(req.ids.size());
  if (rows == 0) fail("forward: no rows");
  if (req.positions.size() != req.ids.size()) {
    fail("forward: {} positions for {} rows", req.positions.size(), req.ids.size());
  }
  const std::int64_t slots = req.block_table.empty()
                                 ? cache.capacity()
                                 : static_cast<std::int64_t>(req.block_table.size()) * cache.shape().block_size;
  if (req.cache_start < 0 || req.cache_start + rows > slots) {
    fail("forward: cache slots {}..{} exceed the {} slots of the sequence's KV cache", req.cache_start,
         req.cache_start + rows - 1, slots);
  }
  for (std::int32_t p : req.positions) {
    if (p < 0 || p >= config_.max_position_embeddings) {
      fail("forward: position {} is outside [0, {})", p, config_.max_position_embeddings);
    }
  }
  for (std::int32_t r : req.logit_rows) {
    if (r < 0 || r >= rows) fail("forward: logit row {} is outside the {} rows", r, rows);
  }
  if (!req.draws.empty() && req.draws.size() != req.logit_rows.size()) {
    fail("forward: {} draws for {} logit rows", req.draws.size(), req.logit_rows.size());
  }
}

std::vector<float> Transformer::forward(KvCache& cache, const ForwardRequest& req) {
  return forward_batch(cache, std::span<const ForwardRequest>(&req, 1));
}

std::vector<float> Transformer::forward_batch(KvCache& cache, std::span<const ForwardRequest> sequences) {
  std::vector<ForwardRequest> whole(sequences.begin(), sequences.end());
  for (ForwardRequest& r : whole) r.full_logits = true;
  return forward_rows(cache, whole).logits;
}

DeviceMatrix Transformer::select_rows(DeviceMatrix all, std::span<const std::int32_t> rows,
                                      std::unique_ptr<DeviceBuffer>& buffer, std::int64_t& capacity) {
  const std::int64_t m = static_cast<std::int64_t>(rows.size());
  if (m == all.rows) return all;  // rows are increasing and distinct: all of them, in order
  if (m > capacity) {
    buffer = backend_.alloc(m, all.cols);
    capacity = m;
  }
  const DeviceMatrix selected = buffer->view(m, all.cols);
  backend_.gather_rows(all, rows, selected);
  return selected;
}

ForwardOutput Transformer::forward_rows(KvCache& cache, std::span<const ForwardRequest> sequences) {
  ForwardOutput output;
  forward_rows(cache, sequences, output);
  return output;
}

void Transformer::forward_rows(KvCache& cache, std::span<const ForwardRequest> sequences, ForwardOutput& output) {
  if (static_cast<std::int64_t>(whole_pool_.size()) != cache.shape().num_blocks) {
    whole_pool_.resize(static_cast<std::size_t>(cache.shape().num_blocks));
    std::iota(whole_pool_.begin(), whole_pool_.end(), 0);
  }
  // Pack every sequence's rows; remember where each wanted logit row lands in the output.
  std::vector<std::int32_t> ids, positions;
  std::vector<std::int64_t> seq_begin;
  std::vector<std::pair<std::int64_t, std::int64_t>> wanted;  // (packed row, output index)
  std::vector<const RowDraw*> draw_of;                        // per output index, or null
  output.full_row.clear();
  std::int64_t full_rows = 0;
  for (const ForwardRequest& req : sequences) {
    validate(cache, req);
    seq_begin.push_back(static_cast<std::int64_t>(ids.size()));
    for (std::size_t k = 0; k < req.logit_rows.size(); ++k) {
      wanted.emplace_back(seq_begin.back() + req.logit_rows[k], static_cast<std::int64_t>(wanted.size()));
      output.full_row.push_back(req.full_logits ? full_rows++ : -1);
      draw_of.push_back(req.draws.empty() ? nullptr : &req.draws[k]);
    }
    ids.insert(ids.end(), req.ids.begin(), req.ids.end());
    positions.insert(positions.end(), req.positions.begin(), req.positions.end());
  }
  std::sort(wanted.begin(), wanted.end());
  const std::int64_t total_rows = static_cast<std::int64_t>(ids.size());
  const std::int64_t vocab = config_.vocab_size;
  const std::int64_t n_wanted = static_cast<std::int64_t>(wanted.size());
  output.entropy.resize(static_cast<std::size_t>(n_wanted));
  output.argmax.resize(static_cast<std::size_t>(n_wanted));
  output.token.resize(static_cast<std::size_t>(n_wanted));
  output.logits.resize(static_cast<std::size_t>(full_rows * vocab));
  if (n_wanted > selected_capacity_) {
    selected_ = backend_.alloc(n_wanted, config_.hidden_size);
    logits_ = backend_.alloc(n_wanted, vocab);
    selected_capacity_ = n_wanted;
  }

  std::vector<AttentionSequence> pieces;
  std::vector<std::int32_t> local_rows, whole_rows, sampled_rows, sampled_tokens;
  std::vector<RowDraw> chunk_draws;
  std::vector<float> entropy;
  std::vector<std::int32_t> argmax;
  std::size_t next_wanted = 0;
  for (std::int64_t begin = 0; begin < total_rows; begin += max_rows_) {
    const std::int64_t end = std::min(total_rows, begin + max_rows_);
    // Each sequence's rows inside this chunk attend like a sequence of their own, starting at
    // the cache slot their first row writes.
    pieces.clear();
    for (std::size_t i = 0; i < sequences.size(); ++i) {
      const std::int64_t s_begin = seq_begin[i], s_end = s_begin + static_cast<std::int64_t>(sequences[i].ids.size());
      const std::int64_t lo = std::max(s_begin, begin), hi = std::min(s_end, end);
      if (lo >= hi) continue;
      std::span<const std::int32_t> table =
          sequences[i].block_table.empty() ? std::span<const std::int32_t>(whole_pool_) : sequences[i].block_table;
      pieces.push_back({lo - begin, hi - lo, sequences[i].cache_start + (lo - s_begin), table});
    }
    run_chunk(cache, std::span<const std::int32_t>(ids).subspan(begin, end - begin),
              std::span<const std::int32_t>(positions).subspan(begin, end - begin), pieces);
    // Logits only for the wanted rows of this chunk: the lm_head is the largest matrix.
    local_rows.clear();
    const std::size_t first_wanted = next_wanted;
    while (next_wanted < wanted.size() && wanted[next_wanted].first < end) {
      local_rows.push_back(static_cast<std::int32_t>(wanted[next_wanted].first - begin));
      ++next_wanted;
    }
    if (local_rows.empty()) continue;
    const std::int64_t n = static_cast<std::int64_t>(local_rows.size());
    DeviceMatrix selected = selected_->view(n, config_.hidden_size);
    DeviceMatrix out = logits_->view(n, vocab);
    backend_.gather_rows(normed_->view(end - begin, config_.hidden_size), local_rows, selected);
    backend_.linear(selected, *lm_head_, out);
    entropy.resize(static_cast<std::size_t>(n));
    argmax.resize(static_cast<std::size_t>(n));
    backend_.summarize_logits(out, entropy.data(), argmax.data());
    whole_rows.clear();
    sampled_rows.clear();
    chunk_draws.clear();
    for (std::int64_t i = 0; i < n; ++i) {
      const std::size_t dest = static_cast<std::size_t>(wanted[first_wanted + static_cast<std::size_t>(i)].second);
      output.entropy[dest] = entropy[static_cast<std::size_t>(i)];
      output.argmax[dest] = argmax[static_cast<std::size_t>(i)];
      output.token[dest] = argmax[static_cast<std::size_t>(i)];
      if (output.full_row[dest] >= 0) whole_rows.push_back(static_cast<std::int32_t>(i));
      if (draw_of[dest] != nullptr) {
        sampled_rows.push_back(static_cast<std::int32_t>(i));
        chunk_draws.push_back(*draw_of[dest]);
      }
    }
    if (!sampled_rows.empty()) {
      // Sampled where the logits are: only the tokens come back.
      const std::int64_t m = static_cast<std::int64_t>(sampled_rows.size());
      const DeviceMatrix rows = select_rows(out, sampled_rows, sampled_logits_, sampled_capacity_);
      sampled_tokens.resize(static_cast<std::size_t>(m));
      backend_.sample_logits(rows, chunk_draws, sampled_tokens.data());
      for (std::int64_t j = 0; j < m; ++j) {
        const std::size_t i = static_cast<std::size_t>(sampled_rows[static_cast<std::size_t>(j)]);
        output.token[static_cast<std::size_t>(wanted[first_wanted + i].second)] = sampled_tokens[static_cast<std::size_t>(j)];
      }
    }
    if (whole_rows.empty()) continue;
    // Only the rows asked for whole leave the device whole.
    const std::int64_t m = static_cast<std::int64_t>(whole_rows.size());
    const DeviceMatrix compact = select_rows(out, whole_rows, full_logits_, full_capacity_);
    // Straight into the output when these rows land on consecutive output rows (one sequence's
    // window, say); otherwise through a reused host buffer.
    auto output_row = [&](std::int64_t j) {
      const std::int64_t dest = wanted[first_wanted + static_cast<std::size_t>(whole_rows[static_cast<std::size_t>(j)])].second;
      return output.full_row[static_cast<std::size_t>(dest)];
    };
    bool consecutive = true;
    for (std::int64_t j = 1; j < m && consecutive; ++j) consecutive = output_row(j) == output_row(0) + j;
    if (consecutive) {
      backend_.download(compact, output.logits.data() + output_row(0) * vocab);
      continue;
    }
    host_rows_.resize(static_cast<std::size_t>(m * vocab));
    backend_.download(compact, host_rows_.data());
    for (std::int64_t j = 0; j < m; ++j) {
      std::copy_n(host_rows_.data() + j * vocab, vocab, output.logits.data() + output_row(j) * vocab);
    }
  }
}

}  // namespace wedlm
