#include "trainer_core/model/gpt.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "trainer_core/model/rope_table.h"
#include "trainer_core/util/rng.h"

namespace trainer_core {

std::string block_prefix(int l) { return "blocks." + std::to_string(l) + "."; }
const char* head_param_name(const ModelConfig& m) { return m.tie_embeddings ? "wte" : "lm_head"; }

namespace {

std::string expert(int l, int e) {
  return block_prefix(l) + "moe.expert" + std::to_string(e) + ".";
}

// y = x Wᵀ for x (n, in) and W (out, in); rows of y are ld_y floats apart.
void linear(Backend& b, const float* x, const float* w, size_t n, int in, int out, float* y,
            int ld_y) {
  if (n)
    b.gemm(Transpose::kNo, Transpose::kYes, int(n), out, in, 1.0f, x, in, w, in, 0.0f, y, ld_y);
}
// dW += dyᵀ x ; dx = beta dx + dy W; rows of dy are ld_dy floats apart.
void linear_backward(Backend& b, const float* dy, int ld_dy, const float* x, const float* w,
                     size_t n, int in, int out, float* dw, float* dx, float dx_beta) {
  if (!n) return;
  b.gemm(Transpose::kYes, Transpose::kNo, out, in, int(n), 1.0f, dy, ld_dy, x, in, 1.0f, dw, in);
  b.gemm(Transpose::kNo, Transpose::kNo, int(n), in, out, 1.0f, dy, ld_dy, w, in, dx_beta, dx, in);
}

}  // namespace

// Geometry of one attention block. MHA: q/k/v are (tokens, heads*head_dim), RoPE on all of each
// head. MLA: the same q/k/v layout is assembled from a latent; each head's first rope_dim
// features carry RoPE (the key part shared across heads), the rest come from the latent.
struct AttentionDims {
  int C, H, d, d_rope, d_nope, r_kv, r_q;
  explicit AttentionDims(const ModelConfig& m)
      : C(m.hidden),
        H(m.n_head),
        d(m.head_dim()),
        d_rope(m.resolved_rope_dim()),
        d_nope(m.head_dim() - m.resolved_rope_dim()),
        r_kv(m.resolved_kv_latent()),
        r_q(m.q_latent_dim) {}
};

struct Gpt::Activations {
  int batch = 0;
  size_t tokens = 0;
  std::vector<Tensor> resid;  // n_layer + 1 residual-stream states, (tokens, C)
  struct Layer {
    KeptInput h1, h2;  // the norms' outputs, read only by GEMMs
    Tensor mean1, rstd1, q, k, v, lse, att, x_mid, mean2, rstd2;
    Tensor cq, c_kv, k_rope, k_nope;  // MLA
    FfnBuffers ffn;
  };
  std::vector<Layer> layers;
  KeptInput hf;  // the final norm's output, read by the head's GEMMs
  Tensor meanf, rstdf;
  Tensor staging;  // bf16 precision: a norm's fp32 output before it is kept in bf16
  // Backward scratch, shared by all layers.
  Tensor dx, dh, dq, dk, dv, datt, dfc, dfc2, dact;
  Tensor dc_kv, dcq, dk_rope, dk_nope;          // MLA
  Tensor slot_dout, slot_dy, slot_du, slot_dx;  // MoE
  Tensor slot_dgate, dlogits;
  Tensor logits, losses;
  size_t logit_rows = 0;
  int logit_ld = 0;  // floats from one row of logits to the next: vocab rounded up to 64
};

Gpt::Gpt(const ModelConfig& config, Backend& backend) : config_(config), backend_(backend) {
  const int C = config.hidden, F = config.ffn_hidden, V = config.vocab_size;
  const bool layernorm = config.norm == Norm::kLayerNorm;
  const AttentionDims a(config);
  auto add = [&](std::string name, ParamRole role, int rows, int cols) {
    params_.push_back({std::move(name), role, rows, cols, num_params_});
    num_params_ += size_t(rows) * cols;
  };
  add("wte", ParamRole::kEmbedding, V, C);
  for (int l = 0; l < config.n_layer; ++l) {
    const std::string p = block_prefix(l);
    add(p + "norm1.gain", ParamRole::kNormGain, 1, C);
    if (layernorm) add(p + "norm1.bias", ParamRole::kNormBias, 1, C);
    // Every projection is a whole matrix (Muon treats Q, K, V and the MLA maps as such).
    if (config.attention == Attention::kMla) {
      if (a.r_q > 0) {
        add(p + "attn.wdq", ParamRole::kBlockMatrix, a.r_q, C);
        add(p + "attn.wuq", ParamRole::kBlockMatrix, a.H * a.d, a.r_q);
      } else {
        add(p + "attn.wq", ParamRole::kBlockMatrix, a.H * a.d, C);
      }
      add(p + "attn.wkr", ParamRole::kBlockMatrix, a.d_rope, C);
      add(p + "attn.wdkv", ParamRole::kBlockMatrix, a.r_kv, C);
      add(p + "attn.wuk", ParamRole::kBlockMatrix, a.H * a.d_nope, a.r_kv);
      add(p + "attn.wuv", ParamRole::kBlockMatrix, a.H * a.d, a.r_kv);
    } else {
      for (const char* w : {"attn.wq", "attn.wk", "attn.wv"})
        add(p + w, ParamRole::kBlockMatrix, C, C);
    }
    add(p + "attn.wo", ParamRole::kBlockMatrix, C, a.H * a.d);
    add(p + "norm2.gain", ParamRole::kNormGain, 1, C);
    if (layernorm) add(p + "norm2.bias", ParamRole::kNormBias, 1, C);
    if (config.ffn == Ffn::kMoe) {
      // The router is a matrix inside the block like any other: Muon updates it too.
      add(p + "moe.router", ParamRole::kBlockMatrix, config.n_experts, C);
      const int Fe = config.resolved_expert_hidden();
      for (int e = 0; e < config.n_experts; ++e) {
        add(expert(l, e) + "w_in", ParamRole::kBlockMatrix, Fe, C);
        add(expert(l, e) + "w_out", ParamRole::kBlockMatrix, C, Fe);
      }
      if (config.shared_expert) {
        add(p + "moe.shared.w_in", ParamRole::kBlockMatrix, F, C);
        add(p + "moe.shared.w_out", ParamRole::kBlockMatrix, C, F);
      }
    } else {
      if (config.activation == Activation::kSwiglu) {
        add(p + "mlp.w_gate", ParamRole::kBlockMatrix, F, C);
        add(p + "mlp.w_up", ParamRole::kBlockMatrix, F, C);
      } else {
        add(p + "mlp.w_in", ParamRole::kBlockMatrix, F, C);
      }
      add(p + "mlp.w_out", ParamRole::kBlockMatrix, C, F);
    }
  }
  add("norm_f.gain", ParamRole::kNormGain, 1, C);
  if (layernorm) add("norm_f.bias", ParamRole::kNormBias, 1, C);
  if (!config.tie_embeddings) add("lm_head", ParamRole::kHead, V, C);
  // muP: every block matrix reads a width-sized input (fan-in grows as m); its output grows too
  // except the router's (one logit per expert) and MLA's rope key (at most 32 features, shared by
  // the heads), which are readout-like. AdamW's lr shrinks as 1 / fan-in so that a hidden
  // matrix's update does not grow with width, its weight decay grows as fan-in so that the decay
  // per step does not shrink; embeddings, norms and the head keep theirs. Muon reads the
  // multipliers in its own rule (Optimizer, muon_mup_factor).
  const double m = config.width_multiplier();
  for (ParamInfo& p : params_) {
    if (p.role != ParamRole::kBlockMatrix) continue;
    const bool fixed_out = p.name.ends_with("moe.router") || p.name.ends_with("attn.wkr");
    p.fan_in_mult = m;
    p.fan_out_mult = fixed_out ? 1.0 : m;
    p.adamw_lr_scale = float(1.0 / m);
    p.adamw_wd_scale = float(m);
  }
  for (size_t i = 0; i < params_.size(); ++i) param_index_.emplace(params_[i].name, i);

  weights_ = Tensor(backend, num_params_);
  grads_ = Tensor(backend, num_params_);
  backend.fill(grads_.data(), num_params_, 0.0f);

  const RopeTable rope = make_rope_table(config);
  rope_cos_ = Tensor(backend, rope.cos.size());
  rope_sin_ = Tensor(backend, rope.sin.size());
  backend.upload(rope_cos_.data(), rope.cos.data(), rope.cos.size());
  backend.upload(rope_sin_.data(), rope.sin.data(), rope.sin.size());
}

Gpt::~Gpt() = default;

const ParamInfo& Gpt::param(const std::string& name) const {
  const auto it = param_index_.find(name);
  if (it == param_index_.end()) throw std::out_of_range("no parameter named " + name);
  return params_[it->second];
}
const float* Gpt::weight(const std::string& name) const {
  return weights_.data() + param(name).offset;
}
float* Gpt::g(const std::string& name) { return grads_.data() + param(name).offset; }

void Gpt::init_weights(uint64_t seed) {
  std::vector<float> host(num_params_);
  NormalRng rng(seed);
  // muP: a block matrix starts at init_std / sqrt(fan-in multiplier), times
  // sqrt(fan-out / fan-in multiplier) when its output does not grow with width (readout-like:
  // init_std / m), the spectral condition of Yang, Simon & Bernstein (docs/science.md).
  auto block_std = [&](const ParamInfo& p) {
    return config_.init_std / std::sqrt(p.fan_in_mult) *
           std::min(1.0, std::sqrt(p.fan_out_mult / p.fan_in_mult));
  };
  const double residual_shrink = std::sqrt(2.0 * config_.n_layer);
  for (const auto& p : params_) {
    float* out = host.data() + p.offset;
    if (p.role == ParamRole::kNormGain) {
      std::fill(out, out + p.size(), 1.0f);
    } else if (p.role == ParamRole::kNormBias) {
      std::fill(out, out + p.size(), 0.0f);
    } else {
      const bool residual_out = p.name.ends_with("attn.wo") || p.name.ends_with("w_out");
      const double std = residual_out                        ? block_std(p) / residual_shrink
                         : p.role == ParamRole::kBlockMatrix ? block_std(p)
                                                             : config_.init_std;
      for (size_t i = 0; i < p.size(); ++i) out[i] = float(std * rng.next());
    }
  }
  backend_.upload(weights_.data(), host.data(), num_params_);
}

void Gpt::zero_grads() { backend_.fill(grads_.data(), num_params_, 0.0f); }

KeptInput::KeptInput(Backend& b, size_t count, Precision precision) {
  if (precision == Precision::kBf16)
    bf16 = Bf16Tensor(b, count);
  else
    f32 = Tensor(b, count);
}

FfnBuffers::FfnBuffers(Backend& b, const ModelConfig& m, size_t n) {
  const size_t F = m.ffn_hidden;
  if (m.ffn != Ffn::kMoe) {
    fc = Tensor(b, n * F);
    fc2 = Tensor(b, m.activation == Activation::kSwiglu ? n * F : 0);
    act = KeptInput(b, n * F, m.precision);
    return;
  }
  const size_t E = size_t(m.n_experts), slots = n * m.top_k, Fe = m.resolved_expert_hidden();
  const size_t shared_f = m.shared_expert ? F : 0, C = m.hidden;
  router_logits = Tensor(b, n * E);
  router_probs = Tensor(b, n * E);
  slot_token = IntTensor(b, slots);
  token_slot = IntTensor(b, slots);
  expert_offset = IntTensor(b, E + 1);
  slot_gate = Tensor(b, slots);
  expert_stats = Tensor(b, 2 * E);
  xs = Tensor(b, slots * C);
  us = Tensor(b, slots * Fe);
  as = Tensor(b, slots * Fe);
  ys = Tensor(b, slots * C);
  shared_fc = Tensor(b, n * shared_f);
  shared_act = Tensor(b, n * shared_f);
}

void Gpt::ensure_activations(int batch) {
  if (acts_ && acts_->batch == batch) return;
  acts_.reset();  // free the old set first so the peak reflects one set only
  auto a = std::make_unique<Activations>();
  const size_t n = size_t(batch) * config_.seq_len, C = config_.hidden, F = config_.ffn_hidden;
  const AttentionDims dims(config_);
  const size_t qkv = size_t(dims.H) * dims.d;
  const size_t lse = size_t(batch) * config_.n_head * config_.seq_len;  // O(seq), no probs
  const bool layernorm = config_.norm == Norm::kLayerNorm,
             swiglu = config_.activation == Activation::kSwiglu;
  const bool mla = config_.attention == Attention::kMla, moe = config_.ffn == Ffn::kMoe;
  const size_t slots = moe ? n * config_.top_k : 0, Fe = moe ? config_.resolved_expert_hidden() : 0;
  const size_t dense_f = moe ? (config_.shared_expert ? F : 0) : F;
  Backend& b = backend_;
  a->batch = batch;
  a->tokens = n;
  for (int l = 0; l <= config_.n_layer; ++l) a->resid.emplace_back(b, n * C);
  for (int l = 0; l < config_.n_layer; ++l) {
    Activations::Layer L;
    L.h1 = KeptInput(b, n * C, config_.precision);
    L.mean1 = Tensor(b, layernorm ? n : 0);
    L.rstd1 = Tensor(b, n);
    L.q = Tensor(b, n * qkv);
    L.k = Tensor(b, n * qkv);
    L.v = Tensor(b, n * qkv);
    L.lse = Tensor(b, lse);
    L.att = Tensor(b, n * qkv);
    L.x_mid = Tensor(b, n * C);
    L.h2 = KeptInput(b, n * C, config_.precision);
    L.mean2 = Tensor(b, layernorm ? n : 0);
    L.rstd2 = Tensor(b, n);
    if (mla) {
      L.cq = Tensor(b, dims.r_q > 0 ? n * dims.r_q : 0);
      L.c_kv = Tensor(b, n * dims.r_kv);
      L.k_rope = Tensor(b, n * dims.d_rope);
      L.k_nope = Tensor(b, n * dims.H * dims.d_nope);
    }
    L.ffn = FfnBuffers(b, config_, n);
    a->layers.push_back(std::move(L));
  }
  a->hf = KeptInput(b, n * C, config_.precision);
  a->staging = Tensor(b, config_.precision == Precision::kBf16 ? n * C : 0);
  a->meanf = Tensor(b, layernorm ? n : 0);
  a->rstdf = Tensor(b, n);
  for (Tensor* t : {&a->dx, &a->dh}) *t = Tensor(b, n * C);
  for (Tensor* t : {&a->dq, &a->dk, &a->dv, &a->datt}) *t = Tensor(b, n * qkv);
  a->dfc = Tensor(b, n * std::max(dense_f, Fe));
  // dact doubles as the FFN forward's scratch (Gpt::ffn_forward), hence at least n·C.
  a->dact = Tensor(b, n * std::max({dense_f, Fe, C}));
  a->dfc2 = Tensor(b, swiglu ? n * F : 0);
  if (mla) {
    a->dc_kv = Tensor(b, n * dims.r_kv);
    a->dcq = Tensor(b, dims.r_q > 0 ? n * dims.r_q : 0);
    a->dk_rope = Tensor(b, n * dims.d_rope);
    a->dk_nope = Tensor(b, n * dims.H * dims.d_nope);
  }
  if (moe) {
    for (Tensor* t : {&a->slot_dout, &a->slot_dy, &a->slot_dx}) *t = Tensor(b, slots * C);
    a->slot_du = Tensor(b, slots * Fe);
    a->slot_dgate = Tensor(b, slots);
    a->dlogits = Tensor(b, n * config_.n_experts);
  }
  // Logit rows computed at once by the head: the backend's budget (Backend::logit_budget_floats).
  // Rows of logits start 256-byte aligned (50,257 → 50,304 floats), which the GPU's GEMM and
  // cross-entropy kernels read and write at full width; the padding columns stay 0.
  a->logit_ld = (config_.vocab_size + 63) / 64 * 64;
  a->logit_rows = std::clamp<size_t>(b.logit_budget_floats() / a->logit_ld, 1, n);
  a->logits = Tensor(b, a->logit_rows * a->logit_ld);
  b.fill(a->logits.data(), a->logits.size(), 0.0f);
  a->losses = Tensor(b, n);
  acts_ = std::move(a);
}

const Bf16* Gpt::rounded(const float* x, size_t n, Bf16Tensor& scratch) const {
  if (scratch.size() < n) {
    scratch.reset();  // free first: the peak holds one scratch, not two
    scratch = Bf16Tensor(backend_, n);
  }
  backend_.to_bf16(x, n, scratch.data());
  return scratch.data();
}

void Gpt::refresh_bf16_weights() const {
  if (!bf16()) return;
  if (weights16_.size() != num_params_) weights16_ = Bf16Tensor(backend_, num_params_);
  backend_.to_bf16(weights_.data(), num_params_, weights16_.data());
}

void Gpt::project(GemmInput x, const std::string& name, size_t n, int in, int out, float* y,
                  int ld_y) const {
  if (!ld_y) ld_y = out;
  if (!bf16()) {
    linear(backend_, x.f32, w(name), n, in, out, y, ld_y);
  } else if (n) {
    const Bf16* w16 = weights16_.data() + param(name).offset;
    const Bf16* x16 = x.bf16 ? x.bf16 : rounded(x.f32, n * in, x16_);
    backend_.gemm_bf16(Transpose::kNo, Transpose::kYes, int(n), out, in, 1.0f, x16, in, w16, in,
                       0.0f, y, ld_y);
  }
  if (probe_) probe_(name, x, n, in, out, y, ld_y);
}

void Gpt::head_logits(GemmInput h, size_t n, float* logits, int ld) const {
  project(h, head_param_name(config_), n, config_.hidden, config_.vocab_size, logits, ld);
  if (const float k = logit_multiplier(); k != 1.0f && n > 0)
    backend_.scale(logits, (n - 1) * size_t(ld ? ld : config_.vocab_size) + config_.vocab_size, k);
}

void Gpt::project_backward(const float* dy, GemmInput x, const std::string& name, size_t n, int in,
                           int out, float* dx, float dx_beta, int ld_dy) {
  if (!ld_dy) ld_dy = out;
  if (!bf16())
    return linear_backward(backend_, dy, ld_dy, x.f32, w(name), n, in, out, g(name), dx, dx_beta);
  if (!n) return;
  const Bf16* w16 = weights16_.data() + param(name).offset;
  const Bf16* dy16 = rounded(dy, (n - 1) * ld_dy + out, dy16_);
  const Bf16* x16 = x.bf16 ? x.bf16 : rounded(x.f32, n * in, x16_);
  backend_.gemm_bf16(Transpose::kYes, Transpose::kNo, out, in, int(n), 1.0f, dy16, ld_dy, x16, in,
                     1.0f, g(name), in);
  backend_.gemm_bf16(Transpose::kNo, Transpose::kNo, int(n), in, out, 1.0f, dy16, ld_dy, w16, in,
                     dx_beta, dx, in);
}

double Gpt::forward_backward(const int32_t* inputs, const int32_t* targets, int batch,
                             float loss_scale) {
  return forward(inputs, targets, batch, true, loss_scale);
}

double Gpt::forward_loss(const int32_t* inputs, const int32_t* targets, int batch) {
  return forward(inputs, targets, batch, false, 0.0f);
}

void Gpt::attention_forward(int l, int batch) {
  Activations& a = *acts_;
  auto& L = a.layers[l];
  Backend& b = backend_;
  const size_t n = a.tokens;
  const AttentionDims d(config_);
  const std::string p = block_prefix(l);
  const AttentionShape shape{batch, config_.seq_len, d.H, d.d};
  if (config_.attention == Attention::kMla) {
    const int qkv = d.H * d.d;
    if (d.r_q > 0) {
      project(L.h1.input(), p + "attn.wdq", n, d.C, d.r_q, L.cq.data());
      project(L.cq.data(), p + "attn.wuq", n, d.r_q, qkv, L.q.data());
    } else {
      project(L.h1.input(), p + "attn.wq", n, d.C, qkv, L.q.data());
    }
    project(L.h1.input(), p + "attn.wkr", n, d.C, d.d_rope, L.k_rope.data());
    project(L.h1.input(), p + "attn.wdkv", n, d.C, d.r_kv, L.c_kv.data());
    project(L.c_kv.data(), p + "attn.wuk", n, d.r_kv, d.H * d.d_nope, L.k_nope.data());
    project(L.c_kv.data(), p + "attn.wuv", n, d.r_kv, qkv, L.v.data());
    b.rope(L.q.data(), shape, d.d_rope, rope_cos_.data(), rope_sin_.data(), false);
    b.rope(L.k_rope.data(), {batch, config_.seq_len, 1, d.d_rope}, d.d_rope, rope_cos_.data(),
           rope_sin_.data(), false);
    // Each head's key: [shared rotated part | its own part from the latent].
    // The per-head parts as one block: rows (token, head) of d_nope floats into rows of d.
    b.copy_block(L.k_nope.data(), d.d_nope, L.k.data() + d.d_rope, d.d, n * d.H, d.d_nope, false);
    for (int h = 0; h < d.H; ++h)  // the shared rotated part, into every head
      b.copy_block(L.k_rope.data(), d.d_rope, L.k.data() + size_t(h) * d.d, qkv, n, d.d_rope,
                   false);
  } else {
    project(L.h1.input(), p + "attn.wq", n, d.C, d.C, L.q.data());
    project(L.h1.input(), p + "attn.wk", n, d.C, d.C, L.k.data());
    project(L.h1.input(), p + "attn.wv", n, d.C, d.C, L.v.data());
    b.rope(L.q.data(), shape, d.d, rope_cos_.data(), rope_sin_.data(), false);
    b.rope(L.k.data(), shape, d.d, rope_cos_.data(), rope_sin_.data(), false);
  }
  b.attention_forward(L.q.data(), L.k.data(), L.v.data(), shape, L.lse.data(), L.att.data());
  project(L.att.data(), p + "attn.wo", n, d.H * d.d, d.C, L.x_mid.data());
}

void Gpt::attention_backward(int l, int batch) {
  Activations& a = *acts_;
  auto& L = a.layers[l];
  Backend& b = backend_;
  const size_t n = a.tokens;
  const AttentionDims d(config_);
  const std::string p = block_prefix(l);
  const int qkv = d.H * d.d;
  const AttentionShape shape{batch, config_.seq_len, d.H, d.d};
  // a.dx holds dL/d x_mid; leaves dL/d h1 in a.dh.
  project_backward(a.dx.data(), L.att.data(), p + "attn.wo", n, qkv, d.C, a.datt.data(), 0.0f);
  b.attention_backward(a.datt.data(), L.q.data(), L.k.data(), L.v.data(), L.att.data(),
                       L.lse.data(), shape, a.dq.data(), a.dk.data(), a.dv.data());
  if (config_.attention == Attention::kMla) {
    b.rope(a.dq.data(), shape, d.d_rope, rope_cos_.data(), rope_sin_.data(), true);
    b.fill(a.dk_rope.data(), n * d.d_rope, 0.0f);
    b.copy_block(a.dk.data() + d.d_rope, d.d, a.dk_nope.data(), d.d_nope, n * d.H, d.d_nope, false);
    for (int h = 0; h < d.H; ++h)  // the shared rotated part sums every head's gradient
      b.copy_block(a.dk.data() + size_t(h) * d.d, qkv, a.dk_rope.data(), d.d_rope, n, d.d_rope,
                   true);
    b.rope(a.dk_rope.data(), {batch, config_.seq_len, 1, d.d_rope}, d.d_rope, rope_cos_.data(),
           rope_sin_.data(), true);
    project_backward(a.dv.data(), L.c_kv.data(), p + "attn.wuv", n, d.r_kv, qkv, a.dc_kv.data(),
                     0.0f);
    project_backward(a.dk_nope.data(), L.c_kv.data(), p + "attn.wuk", n, d.r_kv, d.H * d.d_nope,
                     a.dc_kv.data(), 1.0f);
    project_backward(a.dc_kv.data(), L.h1.input(), p + "attn.wdkv", n, d.C, d.r_kv, a.dh.data(),
                     0.0f);
    project_backward(a.dk_rope.data(), L.h1.input(), p + "attn.wkr", n, d.C, d.d_rope, a.dh.data(),
                     1.0f);
    if (d.r_q > 0) {
      project_backward(a.dq.data(), L.cq.data(), p + "attn.wuq", n, d.r_q, qkv, a.dcq.data(), 0.0f);
      project_backward(a.dcq.data(), L.h1.input(), p + "attn.wdq", n, d.C, d.r_q, a.dh.data(),
                       1.0f);
    } else {
      project_backward(a.dq.data(), L.h1.input(), p + "attn.wq", n, d.C, qkv, a.dh.data(), 1.0f);
    }
  } else {
    b.rope(a.dq.data(), shape, d.d, rope_cos_.data(), rope_sin_.data(), true);
    b.rope(a.dk.data(), shape, d.d, rope_cos_.data(), rope_sin_.data(), true);
    project_backward(a.dq.data(), L.h1.input(), p + "attn.wq", n, d.C, d.C, a.dh.data(), 0.0f);
    project_backward(a.dk.data(), L.h1.input(), p + "attn.wk", n, d.C, d.C, a.dh.data(), 1.0f);
    project_backward(a.dv.data(), L.h1.input(), p + "attn.wv", n, d.C, d.C, a.dh.data(), 1.0f);
  }
}

void Gpt::norm_forward(const std::string& prefix, const float* x, size_t n, float* out, float* mean,
                       float* rstd) const {
  const float eps = float(config_.norm_eps);
  if (config_.norm == Norm::kLayerNorm)
    backend_.layernorm_forward(x, w(prefix + ".gain"), w(prefix + ".bias"), n, config_.hidden, eps,
                               out, mean, rstd);
  else
    backend_.rmsnorm_forward(x, w(prefix + ".gain"), n, config_.hidden, eps, out, rstd);
}

// For MoE it also routes: top-k of the router logits per token, softmax gates over the chosen
// logits; tokens are grouped by expert ("dropless": every expert takes all its tokens) and each
// expert runs as one GEMM pair on its rows. The returned Switch load-balancing loss is
// alpha*E*sum_i f_i*P_i (f_i: share of routed slots, P_i: mean router probability).
double Gpt::ffn_forward(int l, GemmInput h, size_t n, FfnBuffers& f, float* out,
                        float* scratch) const {
  Backend& b = backend_;
  const int C = config_.hidden, F = config_.ffn_hidden;
  const std::string p = block_prefix(l);
  if (config_.ffn != Ffn::kMoe) {
    if (config_.activation == Activation::kSwiglu) {
      project(h, p + "mlp.w_gate", n, C, F, f.fc.data());
      project(h, p + "mlp.w_up", n, C, F, f.fc2.data());
      produce_kept(f.act, n * F, scratch,
                   [&](float* act) { b.swiglu_forward(f.fc.data(), f.fc2.data(), n * F, act); });
    } else {
      project(h, p + "mlp.w_in", n, C, F, f.fc.data());
      produce_kept(f.act, n * F, scratch,
                   [&](float* act) { b.gelu_forward(f.fc.data(), n * F, act); });
    }
    project(f.act.input(), p + "mlp.w_out", n, F, C, out);
    return 0.0;
  }
  const int E = config_.n_experts, K = config_.top_k, Fe = config_.resolved_expert_hidden();
  const size_t slots = n * size_t(K);
  project(h, p + "moe.router", n, C, E, f.router_logits.data());
  b.moe_route(f.router_logits.data(), n, E, K, f.router_probs.data(), f.slot_token.data(),
              f.slot_gate.data(), f.token_slot.data(), f.expert_offset.data(),
              f.expert_stats.data());
  // The host needs only the group sizes (for the experts' GEMM shapes) and 2E statistics.
  f.offsets.resize(size_t(E) + 1);
  f.stats.resize(2 * size_t(E));
  b.download_ints(f.offsets.data(), f.expert_offset.data(), f.offsets.size());
  b.download(f.stats.data(), f.expert_stats.data(), f.stats.size());
  double aux = 0;
  for (int e = 0; e < E; ++e) aux += double(f.stats[size_t(e)]) * f.stats[size_t(E + e)];

  b.gather_rows(h.f32, f.slot_token.data(), slots, C, nullptr, f.xs.data());
  for (int e = 0; e < E; ++e) {
    const size_t off = size_t(f.offsets[e]), rows = size_t(f.offsets[e + 1]) - off;
    const std::string x = expert(l, e);
    project(f.xs.data() + off * C, x + "w_in", rows, C, Fe, f.us.data() + off * Fe);
    b.gelu_forward(f.us.data() + off * Fe, rows * Fe, f.as.data() + off * Fe);
    project(f.as.data() + off * Fe, x + "w_out", rows, Fe, C, f.ys.data() + off * C);
  }
  b.fill(out, n * C, 0.0f);
  b.scatter_add_rows(f.ys.data(), f.slot_token.data(), slots, C, f.slot_gate.data(), out);
  if (config_.shared_expert) {
    project(h, p + "moe.shared.w_in", n, C, F, f.shared_fc.data());
    b.gelu_forward(f.shared_fc.data(), n * F, f.shared_act.data());
    project(f.shared_act.data(), p + "moe.shared.w_out", n, F, C, scratch);
    b.axpy(scratch, out, n * C, 1.0f);
  }
  return config_.moe_aux_loss_coef * E * aux;
}

// a.dx holds dL/d(FFN output); leaves dL/d h2 in a.dh.
void Gpt::ffn_backward(int l) {
  Activations& a = *acts_;
  auto& L = a.layers[l];
  Backend& b = backend_;
  const size_t n = a.tokens;
  const int C = config_.hidden, F = config_.ffn_hidden;
  const std::string p = block_prefix(l);
  if (config_.ffn != Ffn::kMoe) {
    project_backward(a.dx.data(), L.ffn.act.input(), p + "mlp.w_out", n, F, C, a.dact.data(), 0.0f);
    if (config_.activation == Activation::kSwiglu) {
      b.swiglu_backward(a.dact.data(), L.ffn.fc.data(), L.ffn.fc2.data(), n * F, a.dfc.data(),
                        a.dfc2.data());
      project_backward(a.dfc.data(), L.h2.input(), p + "mlp.w_gate", n, C, F, a.dh.data(), 0.0f);
      project_backward(a.dfc2.data(), L.h2.input(), p + "mlp.w_up", n, C, F, a.dh.data(), 1.0f);
    } else {
      b.gelu_backward(a.dact.data(), L.ffn.fc.data(), n * F, a.dfc.data());
      project_backward(a.dfc.data(), L.h2.input(), p + "mlp.w_in", n, C, F, a.dh.data(), 0.0f);
    }
    return;
  }
  const int E = config_.n_experts, Fe = config_.resolved_expert_hidden();
  const size_t slots = n * size_t(config_.top_k);
  // Per slot: dL/d gate = <dout_t, y_e(x_t)>, and the expert's output gradient is gate * dout_t.
  b.gather_rows(a.dx.data(), L.ffn.slot_token.data(), slots, C, nullptr, a.slot_dout.data());
  b.rowwise_dot(a.slot_dout.data(), L.ffn.ys.data(), slots, C, a.slot_dgate.data());
  b.gather_rows(a.dx.data(), L.ffn.slot_token.data(), slots, C, L.ffn.slot_gate.data(),
                a.slot_dy.data());
  for (int e = 0; e < E; ++e) {
    const size_t off = size_t(L.ffn.offsets[e]), rows = size_t(L.ffn.offsets[e + 1]) - off;
    const std::string x = expert(l, e);
    project_backward(a.slot_dy.data() + off * C, L.ffn.as.data() + off * Fe, x + "w_out", rows, Fe,
                     C, a.dact.data(), 0.0f);
    b.gelu_backward(a.dact.data(), L.ffn.us.data() + off * Fe, rows * Fe,
                    a.slot_du.data() + off * Fe);
    project_backward(a.slot_du.data() + off * Fe, L.ffn.xs.data() + off * C, x + "w_in", rows, C,
                     Fe, a.slot_dx.data() + off * C, 0.0f);
  }
  b.fill(a.dh.data(), n * C, 0.0f);
  b.scatter_add_rows(a.slot_dx.data(), L.ffn.slot_token.data(), slots, C, nullptr, a.dh.data());

  // Router: through the gates (softmax over the chosen logits) and the load-balancing loss.
  const double aux_scale = config_.moe_aux_loss_coef * E / double(n) * double(aux_grad_scale_);
  b.moe_router_backward(a.slot_dgate.data(), L.ffn.slot_gate.data(), L.ffn.token_slot.data(),
                        L.ffn.expert_offset.data(), L.ffn.router_probs.data(),
                        L.ffn.expert_stats.data(), n, E, config_.top_k, float(aux_scale),
                        a.dlogits.data());
  project_backward(a.dlogits.data(), L.h2.input(), p + "moe.router", n, C, E, a.dh.data(), 1.0f);
  if (config_.shared_expert) {
    project_backward(a.dx.data(), L.ffn.shared_act.data(), p + "moe.shared.w_out", n, F, C,
                     a.dact.data(), 0.0f);
    b.gelu_backward(a.dact.data(), L.ffn.shared_fc.data(), n * F, a.dfc.data());
    project_backward(a.dfc.data(), L.h2.input(), p + "moe.shared.w_in", n, C, F, a.dh.data(), 1.0f);
  }
}

double Gpt::forward(const int32_t* inputs, const int32_t* targets, int batch, bool backward,
                    float loss_scale) {
  for (size_t i = 0; i < size_t(batch) * config_.seq_len; ++i)
    if (inputs[i] < 0 || inputs[i] >= config_.vocab_size || targets[i] < 0 ||
        targets[i] >= config_.vocab_size)
      throw std::out_of_range("token id out of range for vocab_size " +
                              std::to_string(config_.vocab_size));
  ensure_activations(batch);
  Activations& a = *acts_;
  Backend& b = backend_;
  const size_t n = a.tokens;
  const int C = config_.hidden;
  // Each norm's output is kept for the GEMMs that read it; the returned input also has its fp32
  // values, valid until the next norm (bf16 precision: in a.staging).
  auto norm = [&](const float* x, const std::string& prefix, KeptInput& out, Tensor& mean,
                  Tensor& rstd) {
    produce_kept(out, n * C, a.staging.data(), [&](float* target) {
      norm_forward(prefix, x, n, target, mean.data(), rstd.data());
    });
    return GemmInput(out.f32.data() ? out.f32.data() : a.staging.data(), out.bf16.data());
  };
  moe_stats_ = MoeStats();
  aux_grad_scale_ = backward ? loss_scale : 0.0f;
  refresh_bf16_weights();  // the optimizer may have changed the weights since the last pass

  b.embedding_forward(inputs, n, w("wte"), C, a.resid[0].data());
  for (int l = 0; l < config_.n_layer; ++l) {
    auto& L = a.layers[l];
    const std::string p = block_prefix(l);
    norm(a.resid[l].data(), p + "norm1", L.h1, L.mean1, L.rstd1);
    attention_forward(l, batch);
    b.axpy(a.resid[l].data(), L.x_mid.data(), n * C, 1.0f);
    const GemmInput h2 = norm(L.x_mid.data(), p + "norm2", L.h2, L.mean2, L.rstd2);
    moe_stats_.aux_loss +=
        ffn_forward(l, h2, n, L.ffn, a.resid[l + 1].data(), a.dact.data());  // dact: scratch
    b.axpy(L.x_mid.data(), a.resid[l + 1].data(), n * C, 1.0f);
  }
  if (config_.ffn == Ffn::kMoe) {
    moe_stats_.expert_load.assign(config_.n_experts, 0.0);
    for (const auto& L : a.layers)
      for (int e = 0; e < config_.n_experts; ++e)
        moe_stats_.expert_load[e] += L.ffn.stats[size_t(e)] / config_.n_layer;
  }
  norm(a.resid[config_.n_layer].data(), "norm_f", a.hf, a.meanf, a.rstdf);

  head_and_loss(targets, n, backward ? loss_scale / float(n) : 0.0f);
  if (backward) backward_blocks(inputs, batch);
  // The losses are read only now: a device runs the backward without waiting for the host.
  std::vector<float> losses(n);
  b.download(losses.data(), a.losses.data(), n);
  double loss_sum = 0;
  for (float l : losses) loss_sum += l;
  return loss_sum / double(n);
}

// Logits, loss and (with grad_scale != 0) the head's backward, a chunk of rows at a time so the
// (tokens, vocab) logits never exist whole. Leaves each token's loss in a.losses, dL/d hf in a.dh.
void Gpt::head_and_loss(const int32_t* targets, size_t n, float grad_scale) {
  Activations& a = *acts_;
  Backend& b = backend_;
  const int C = config_.hidden, V = config_.vocab_size;
  const std::string head = head_param_name(config_);
  for (size_t r0 = 0; r0 < n; r0 += a.logit_rows) {
    const size_t rows = std::min(a.logit_rows, n - r0);
    const GemmInput h = a.hf.input().at(r0 * C);
    head_logits(h, rows, a.logits.data(), a.logit_ld);
    // The logit multiplier's backward: d raw logits = multiplier * d logits.
    b.softmax_cross_entropy(a.logits.data(), a.logit_ld, targets + r0, rows, V,
                            a.losses.data() + r0, grad_scale * logit_multiplier());
    if (grad_scale != 0.0f)
      project_backward(a.logits.data(), h, head, rows, C, V, a.dh.data() + r0 * C, 0.0f,
                       a.logit_ld);
  }
}

void Gpt::backward_blocks(const int32_t* inputs, int batch) {
  Activations& a = *acts_;
  Backend& b = backend_;
  const size_t n = a.tokens;
  const int C = config_.hidden;
  const bool layernorm = config_.norm == Norm::kLayerNorm;
  // Adds the norm's input gradient into dx.
  auto norm_backward = [&](const float* dout, const float* x, const std::string& prefix,
                           Tensor& mean, Tensor& rstd) {
    if (layernorm)
      b.layernorm_backward(dout, x, w(prefix + ".gain"), mean.data(), rstd.data(), n, C,
                           a.dx.data(), g(prefix + ".gain"), g(prefix + ".bias"));
    else
      b.rmsnorm_backward(dout, x, w(prefix + ".gain"), rstd.data(), n, C, a.dx.data(),
                         g(prefix + ".gain"));
  };

  b.fill(a.dx.data(), n * C, 0.0f);
  norm_backward(a.dh.data(), a.resid[config_.n_layer].data(), "norm_f", a.meanf, a.rstdf);
  for (int l = config_.n_layer - 1; l >= 0; --l) {
    auto& L = a.layers[l];
    const std::string p = block_prefix(l);
    ffn_backward(l);  // dx: dL/d resid[l+1]
    norm_backward(a.dh.data(), L.x_mid.data(), p + "norm2", L.mean2, L.rstd2);
    attention_backward(l, batch);  // dx: dL/d x_mid
    norm_backward(a.dh.data(), a.resid[l].data(), p + "norm1", L.mean1, L.rstd1);
    // A block's parameters are contiguous, from its first norm's gain to the next block's.
    if (gradients_ready_) {
      const size_t begin = param(p + "norm1.gain").offset;
      const size_t end = l + 1 < config_.n_layer ? param(block_prefix(l + 1) + "norm1.gain").offset
                                                 : param("norm_f.gain").offset;
      gradients_ready_(begin, end - begin);
    }
  }
  b.embedding_backward(inputs, n, a.dx.data(), C, g("wte"));
  if (gradients_ready_) {  // the embedding before the blocks; the final norm and head after them
    const size_t blocks_begin = param(block_prefix(0) + "norm1.gain").offset;
    const size_t blocks_end = param("norm_f.gain").offset;
    gradients_ready_(0, blocks_begin);
    gradients_ready_(blocks_end, num_params_ - blocks_end);
  }
}

}  // namespace trainer_core
