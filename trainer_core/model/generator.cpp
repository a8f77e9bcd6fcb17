#include "trainer_core/model/generator.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>

namespace trainer_core {

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

// Working memory of one forward pass over `rows` = batch·tokens new tokens. MLA's new cache
// rows are assembled in key_row as [rotated key | latent]; its queries, absorbed into the latent
// space, in q_latent as [rotated query | W_ukᵀ q_nope] per head.
struct Generator::Buffers {
  size_t rows = 0;
  int batch = 0;
  Tensor x, h, mean, rstd, q, k, v, att, out, scratch, rope_cos, rope_sin;
  Tensor cq, key_row, q_latent, att_latent;  // MLA
  IntTensor positions, cache_rows, start;
  FfnBuffers ffn;

  Buffers(Backend& b, const ModelConfig& m, int batch_size, size_t n) : rows(n), batch(batch_size) {
    const size_t C = m.hidden, H = m.n_head, qkv = H * m.head_dim();
    const size_t dr = m.resolved_rope_dim(), r = m.resolved_kv_latent();
    const bool mla = m.attention == Attention::kMla;
    for (Tensor* t : {&x, &h, &out}) *t = Tensor(b, n * C);
    scratch = Tensor(b, n * std::max<size_t>(C, m.ffn_hidden));  // Gpt::ffn_forward's scratch
    mean = Tensor(b, m.norm == Norm::kLayerNorm ? n : 0);
    rstd = Tensor(b, n);
    q = Tensor(b, n * qkv);
    att = Tensor(b, n * qkv);
    rope_cos = Tensor(b, n * dr / 2);
    rope_sin = Tensor(b, n * dr / 2);
    if (mla) {
      cq = Tensor(b, m.q_latent_dim > 0 ? n * m.q_latent_dim : 0);
      key_row = Tensor(b, n * (dr + r));
      q_latent = Tensor(b, n * H * (dr + r));
      att_latent = Tensor(b, n * H * r);
    } else {
      k = Tensor(b, n * qkv);
      v = Tensor(b, n * qkv);
    }
    positions = IntTensor(b, n);
    cache_rows = IntTensor(b, n);
    start = IntTensor(b, size_t(batch_size));
    ffn = FfnBuffers(b, m, n);
  }
};

Generator::Generator(const Gpt& model, Backend& backend)
    : model_(model), config_(model.config()), backend_(backend) {}

Generator::~Generator() = default;

double Generator::cache_bytes_per_token() const {
  const double per_layer = config_.attention == Attention::kMla
                               ? config_.resolved_kv_latent() + config_.resolved_rope_dim()
                               : 2.0 * config_.n_head * config_.head_dim();
  return per_layer * config_.n_layer * sizeof(float);
}

void Generator::ensure_caches(int batch) {
  if (cache_batch_ == batch) return;
  cache_a_.clear();
  cache_b_.clear();
  const size_t positions = size_t(batch) * config_.seq_len;
  const size_t qkv = size_t(config_.n_head) * config_.head_dim();
  const size_t latent_row = size_t(config_.resolved_rope_dim()) + config_.resolved_kv_latent();
  for (int l = 0; l < config_.n_layer; ++l) {
    if (config_.attention == Attention::kMla) {
      cache_a_.emplace_back(backend_, positions * latent_row);
    } else {
      cache_a_.emplace_back(backend_, positions * qkv);
      cache_b_.emplace_back(backend_, positions * qkv);
    }
  }
  cache_batch_ = batch;
}

void Generator::attention(int l, int batch, int tokens) {
  Buffers& f = *buffers_;
  Backend& b = backend_;
  const ModelConfig& m = config_;
  const size_t n = size_t(batch) * tokens;
  const int C = m.hidden, H = m.n_head, d = m.head_dim(), qkv = H * d;
  const float scale = 1.0f / std::sqrt(float(d));
  const std::string p = block_prefix(l);
  const AttentionShape rows_shape{1, int(n), H, d};  // row i rotates by the angle of positions[i]
  if (m.attention != Attention::kMla) {
    model_.project(f.h.data(), p + "attn.wq", n, C, qkv, f.q.data());
    model_.project(f.h.data(), p + "attn.wk", n, C, qkv, f.k.data());
    model_.project(f.h.data(), p + "attn.wv", n, C, qkv, f.v.data());
    b.rope(f.q.data(), rows_shape, d, f.rope_cos.data(), f.rope_sin.data(), false);
    b.rope(f.k.data(), rows_shape, d, f.rope_cos.data(), f.rope_sin.data(), false);
    b.scatter_rows(f.k.data(), f.cache_rows.data(), n, qkv, cache_a_[size_t(l)].data());
    b.scatter_rows(f.v.data(), f.cache_rows.data(), n, qkv, cache_b_[size_t(l)].data());
    const CacheShape shape{batch, tokens, H, H, d, d, m.seq_len, qkv, qkv};
    b.cached_attention(f.q.data(), cache_a_[size_t(l)].data(), cache_b_[size_t(l)].data(),
                       f.start.data(), shape, scale, f.att.data());
  } else {
    const int dr = m.resolved_rope_dim(), dn = d - dr, r = m.resolved_kv_latent(), row = dr + r;
    if (m.q_latent_dim > 0) {
      model_.project(f.h.data(), p + "attn.wdq", n, C, m.q_latent_dim, f.cq.data());
      model_.project(f.cq.data(), p + "attn.wuq", n, m.q_latent_dim, qkv, f.q.data());
    } else {
      model_.project(f.h.data(), p + "attn.wq", n, C, qkv, f.q.data());
    }
    b.rope(f.q.data(), rows_shape, dr, f.rope_cos.data(), f.rope_sin.data(), false);
    // Both projections write straight into the new cache rows; the rotation takes the first dr
    // features of each row (one "head" as wide as the row).
    model_.project(f.h.data(), p + "attn.wkr", n, C, dr, f.key_row.data(), row);
    model_.project(f.h.data(), p + "attn.wdkv", n, C, r, f.key_row.data() + dr, row);
    b.rope(f.key_row.data(), {1, int(n), 1, row}, dr, f.rope_cos.data(), f.rope_sin.data(), false);
    b.scatter_rows(f.key_row.data(), f.cache_rows.data(), n, row, cache_a_[size_t(l)].data());
    // Absorbed key projection: q_nope,h · (W_uk,h c) = (q_nope,h W_uk,h) · c, W_uk,h (dn, r).
    // Heads are batched: head h's operands sit h·d, h·dn·r and h·row floats further on.
    const float* wuk = model_.weight(p + "attn.wuk");
    const float* wuv = model_.weight(p + "attn.wuv");
    // The rotated parts as one block: rows (token, head) of d floats into rows of `row` floats.
    b.copy_block(f.q.data(), d, f.q_latent.data(), row, n * H, dr, false);
    b.gemm_strided_batched(Transpose::kNo, Transpose::kNo, int(n), r, dn, 1.0f, f.q.data() + dr,
                           qkv, d, wuk, r, (long long)dn * r, 0.0f, f.q_latent.data() + dr, H * row,
                           row, H);
    // One shared kv head: keys are whole cache rows, values their latent part.
    const CacheShape shape{batch, tokens, H, 1, row, r, m.seq_len, row, row};
    const float* cache = cache_a_[size_t(l)].data();
    b.cached_attention(f.q_latent.data(), cache, cache + dr, f.start.data(), shape, scale,
                       f.att_latent.data());
    // Value up-projection once per head on the attention-weighted latent: W_uv,h (d, r).
    b.gemm_strided_batched(Transpose::kNo, Transpose::kYes, int(n), d, r, 1.0f, f.att_latent.data(),
                           H * r, r, wuv, r, (long long)d * r, 0.0f, f.att.data(), qkv, d, H);
  }
}

void Generator::forward(const int32_t* tokens, const std::vector<int32_t>& start, int batch,
                        int count) {
  const size_t n = size_t(batch) * count;
  if (!buffers_ || buffers_->rows != n || buffers_->batch != batch) {
    buffers_.reset();  // free the old set first
    buffers_ = std::make_unique<Buffers>(backend_, config_, batch, n);
  }
  Buffers& f = *buffers_;
  Backend& b = backend_;
  const int C = config_.hidden;
  std::vector<int32_t> positions(n), cache_rows(n);
  for (int s = 0; s < batch; ++s)
    for (int t = 0; t < count; ++t) {
      const size_t i = size_t(s) * count + t;
      positions[i] = start[size_t(s)] + t;
      cache_rows[i] = s * config_.seq_len + positions[i];
    }
  b.upload_ints(f.positions.data(), positions.data(), n);
  b.upload_ints(f.cache_rows.data(), cache_rows.data(), n);
  b.upload_ints(f.start.data(), start.data(), size_t(batch));
  const int half = config_.resolved_rope_dim() / 2;
  b.gather_rows(model_.rope_cos(), f.positions.data(), n, half, nullptr, f.rope_cos.data());
  b.gather_rows(model_.rope_sin(), f.positions.data(), n, half, nullptr, f.rope_sin.data());

  b.embedding_forward(tokens, n, model_.weight("wte"), C, f.x.data());
  for (int l = 0; l < config_.n_layer; ++l) {
    const std::string p = block_prefix(l);
    model_.norm_forward(p + "norm1", f.x.data(), n, f.h.data(), f.mean.data(), f.rstd.data());
    attention(l, batch, count);
    model_.project(f.att.data(), p + "attn.wo", n, config_.n_head * config_.head_dim(), C,
                   f.out.data());
    b.axpy(f.out.data(), f.x.data(), n * C, 1.0f);
    model_.norm_forward(p + "norm2", f.x.data(), n, f.h.data(), f.mean.data(), f.rstd.data());
    model_.ffn_forward(l, f.h.data(), n, f.ffn, f.out.data(), f.scratch.data());
    b.axpy(f.out.data(), f.x.data(), n * C, 1.0f);
  }
  model_.norm_forward("norm_f", f.x.data(), n, f.h.data(), f.mean.data(), f.rstd.data());
}

double Generator::sequence_loss(const std::vector<int32_t>& inputs,
                                const std::vector<int32_t>& targets, int chunk) {
  const int S = int(inputs.size()), V = config_.vocab_size;
  if (S == 0 || S > config_.seq_len || targets.size() != inputs.size() || chunk < 1)
    throw std::invalid_argument("sequence_loss: 1..seq_len inputs, as many targets, chunk >= 1");
  model_.refresh_bf16_weights();
  ensure_caches(1);
  Tensor logits, losses;
  double total = 0;
  for (int t0 = 0; t0 < S; t0 += chunk) {
    const int count = std::min(chunk, S - t0);
    forward(inputs.data() + t0, std::vector<int32_t>{t0}, 1, count);
    if (logits.size() < size_t(count) * V) {
      logits = Tensor(backend_, size_t(count) * V);
      losses = Tensor(backend_, size_t(count));
    }
    model_.head_logits(buffers_->h.data(), size_t(count), logits.data());
    backend_.softmax_cross_entropy(logits.data(), V, targets.data() + t0, size_t(count), V,
                                   losses.data(), 0.0f);
    std::vector<float> host(static_cast<size_t>(count));
    backend_.download(host.data(), losses.data(), host.size());
    for (float v : host) total += v;
  }
  return total / S;
}

std::vector<std::vector<int32_t>> Generator::generate_batch(
    const std::vector<std::vector<int32_t>>& prompts, int count, GenerationStats* stats) {
  const ModelConfig& m = config_;
  if (prompts.empty()) throw std::invalid_argument("generate: no prompts");
  if (count < 1) throw std::invalid_argument("generate: at least one token to generate");
  int longest = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const auto& prompt = prompts[i];
    const std::string which = prompts.size() > 1 ? " (prompt " + std::to_string(i) + ")" : "";
    if (prompt.empty()) throw std::invalid_argument("generate: the prompt is empty" + which);
    // The last generated token is never fed back, but the limit is kept as the user reads it.
    if (int(prompt.size()) + count > m.seq_len)
      throw std::invalid_argument("generate: prompt (" + std::to_string(prompt.size()) +
                                  ") + tokens (" + std::to_string(count) +
                                  ") exceed the model's seq_len " + std::to_string(m.seq_len) +
                                  which);
    for (int32_t id : prompt)
      if (id < 0 || id >= m.vocab_size)
        throw std::invalid_argument("generate: token id " + std::to_string(id) +
                                    " outside the vocabulary of " + std::to_string(m.vocab_size) +
                                    which);
    longest = std::max(longest, int(prompt.size()));
  }
  const int batch = int(prompts.size()), C = m.hidden, V = m.vocab_size;
  model_.refresh_bf16_weights();
  ensure_caches(batch);
  // Prefill: the prompts right-padded to the longest. A padded position is never read by its own
  // sequence's real tokens (causal), and decoding overwrites its cache row before reading it.
  const size_t sequences = prompts.size();
  std::vector<int32_t> padded(sequences * longest, 0), last_rows(sequences);
  for (int s = 0; s < batch; ++s) {
    std::copy(prompts[s].begin(), prompts[s].end(), padded.begin() + size_t(s) * longest);
    last_rows[size_t(s)] = s * longest + int(prompts[s].size()) - 1;
  }
  Tensor last_hidden(backend_, size_t(batch) * C), logits(backend_, size_t(batch) * V);
  IntTensor rows(backend_, size_t(batch)), next(backend_, size_t(batch));
  std::vector<int32_t> tokens(sequences);
  std::vector<std::vector<int32_t>> out(prompts.size());
  // Greedy choice from the final hidden state of each sequence's newest token.
  auto choose = [&](const float* hidden) {
    model_.head_logits(hidden, size_t(batch), logits.data());
    backend_.argmax_rows(logits.data(), size_t(batch), V, next.data());
    backend_.download_ints(tokens.data(), next.data(), tokens.size());
    for (int s = 0; s < batch; ++s) out[size_t(s)].push_back(tokens[size_t(s)]);
  };

  const auto prefill_start = std::chrono::steady_clock::now();
  forward(padded.data(), std::vector<int32_t>(size_t(batch), 0), batch, longest);
  backend_.upload_ints(rows.data(), last_rows.data(), last_rows.size());
  backend_.gather_rows(buffers_->h.data(), rows.data(), size_t(batch), C, nullptr,
                       last_hidden.data());
  choose(last_hidden.data());
  const double prefill_seconds = seconds_since(prefill_start);

  const auto decode_start = std::chrono::steady_clock::now();
  std::vector<int32_t> position(sequences);
  for (int i = 1; i < count; ++i) {
    for (int s = 0; s < batch; ++s) position[size_t(s)] = int(prompts[s].size()) + i - 1;
    forward(tokens.data(), position, batch, 1);
    choose(buffers_->h.data());
  }
  const double decode_seconds = seconds_since(decode_start);
  if (stats) {
    stats->batch = batch;
    stats->prompt_tokens = longest;
    stats->generated_tokens = count;
    stats->prefill_seconds = prefill_seconds;
    // Decode steps only: the first token of each sequence comes out of the prefill.
    stats->tokens_per_second =
        count > 1 && decode_seconds > 0 ? double(batch) * (count - 1) / decode_seconds : 0.0;
    stats->cache_bytes_per_token = cache_bytes_per_token();
  }
  return out;
}

std::vector<int32_t> Generator::generate(const std::vector<int32_t>& prompt, int count,
                                         GenerationStats* stats) {
  return generate_batch({prompt}, count, stats).front();
}

}  // namespace trainer_core
