#include "trainer_core/model/gpt.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "trainer_core/util/rng.h"

namespace trainer_core {

namespace {
constexpr Transpose N = Transpose::kNo, T = Transpose::kYes;
// Logit rows computed at once by the head: bounds the logits buffer to ~64 MB at GPT-2 vocab.
constexpr size_t kLogitBudget = size_t(16) << 20;
}  // namespace

struct Gpt::Activations {
  int batch = 0;
  size_t tokens = 0;
  std::vector<Tensor> resid;  // n_layer + 1 residual-stream states, (tokens, C)
  struct Layer {
    Tensor h1, mean1, rstd1, q, k, v, probs, att, x_mid, h2, mean2, rstd2, fc, fc2, act;
  };
  std::vector<Layer> layers;
  Tensor hf, meanf, rstdf;
  // Backward scratch, shared by all layers.
  Tensor dx, dh, dq, dk, dv, datt, dfc, dfc2, dact;
  Tensor logits, losses;
  size_t logit_rows = 0;
};

Gpt::Gpt(const ModelConfig& config, Backend& backend) : config_(config), backend_(backend) {
  const int C = config.hidden, F = config.ffn_hidden, V = config.vocab_size;
  const bool layernorm = config.norm == "layernorm";
  auto add = [&](std::string name, ParamRole role, int rows, int cols) {
    params_.push_back({std::move(name), role, rows, cols, num_params_});
    num_params_ += size_t(rows) * cols;
  };
  add("wte", ParamRole::kEmbedding, V, C);
  for (int l = 0; l < config.n_layer; ++l) {
    const std::string p = "blocks." + std::to_string(l) + ".";
    add(p + "norm1.gain", ParamRole::kNormGain, 1, C);
    if (layernorm) add(p + "norm1.bias", ParamRole::kNormBias, 1, C);
    for (const char* w : {"attn.wq", "attn.wk", "attn.wv", "attn.wo"})
      add(p + w, ParamRole::kBlockMatrix, C, C);
    add(p + "norm2.gain", ParamRole::kNormGain, 1, C);
    if (layernorm) add(p + "norm2.bias", ParamRole::kNormBias, 1, C);
    if (config.activation == "swiglu") {
      add(p + "mlp.w_gate", ParamRole::kBlockMatrix, F, C);
      add(p + "mlp.w_up", ParamRole::kBlockMatrix, F, C);
    } else {
      add(p + "mlp.w_in", ParamRole::kBlockMatrix, F, C);
    }
    add(p + "mlp.w_out", ParamRole::kBlockMatrix, C, F);
  }
  add("norm_f.gain", ParamRole::kNormGain, 1, C);
  if (layernorm) add("norm_f.bias", ParamRole::kNormBias, 1, C);
  if (!config.tie_embeddings) add("lm_head", ParamRole::kHead, V, C);

  weights_ = Tensor(backend, num_params_);
  grads_ = Tensor(backend, num_params_);
  backend.fill(grads_.data(), num_params_, 0.0f);

  // RoPE angle tables (seq, head_dim/2): pair i rotates at theta^(-2i/head_dim).
  const int hd = config.head_dim(), half = hd / 2, S = config.seq_len;
  std::vector<float> cos_host(size_t(S) * half), sin_host(size_t(S) * half);
  for (int t = 0; t < S; ++t)
    for (int i = 0; i < half; ++i) {
      const double angle = t * std::pow(config.rope_theta, -2.0 * i / hd);
      cos_host[size_t(t) * half + i] = float(std::cos(angle));
      sin_host[size_t(t) * half + i] = float(std::sin(angle));
    }
  rope_cos_ = Tensor(backend, cos_host.size());
  rope_sin_ = Tensor(backend, sin_host.size());
  backend.upload(rope_cos_.data(), cos_host.data(), cos_host.size());
  backend.upload(rope_sin_.data(), sin_host.data(), sin_host.size());
}

Gpt::~Gpt() = default;

const ParamInfo& Gpt::param(const std::string& name) const {
  for (const auto& p : params_)
    if (p.name == name) return p;
  throw std::out_of_range("no parameter named " + name);
}

void Gpt::init_weights(uint64_t seed) {
  std::vector<float> host(num_params_);
  NormalRng rng(seed);
  const double residual_std = config_.init_std / std::sqrt(2.0 * config_.n_layer);
  for (const auto& p : params_) {
    float* w = host.data() + p.offset;
    if (p.role == ParamRole::kNormGain) {
      std::fill(w, w + p.size(), 1.0f);
    } else if (p.role == ParamRole::kNormBias) {
      std::fill(w, w + p.size(), 0.0f);
    } else {
      const bool residual_out = p.name.ends_with("attn.wo") || p.name.ends_with("mlp.w_out");
      const double std = residual_out ? residual_std : config_.init_std;
      for (size_t i = 0; i < p.size(); ++i) w[i] = float(std * rng.next());
    }
  }
  backend_.upload(weights_.data(), host.data(), num_params_);
}

void Gpt::zero_grads() { backend_.fill(grads_.data(), num_params_, 0.0f); }

void Gpt::ensure_activations(int batch) {
  if (acts_ && acts_->batch == batch) return;
  acts_.reset();  // free the old set first so the peak reflects one set only
  auto a = std::make_unique<Activations>();
  const size_t n = size_t(batch) * config_.seq_len, C = config_.hidden, F = config_.ffn_hidden;
  const size_t probs = size_t(batch) * config_.n_head * config_.seq_len * config_.seq_len;
  const bool layernorm = config_.norm == "layernorm", swiglu = config_.activation == "swiglu";
  Backend& b = backend_;
  a->batch = batch;
  a->tokens = n;
  for (int l = 0; l <= config_.n_layer; ++l) a->resid.emplace_back(b, n * C);
  for (int l = 0; l < config_.n_layer; ++l) {
    Activations::Layer L;
    L.h1 = Tensor(b, n * C);
    L.mean1 = Tensor(b, layernorm ? n : 0);
    L.rstd1 = Tensor(b, n);
    L.q = Tensor(b, n * C);
    L.k = Tensor(b, n * C);
    L.v = Tensor(b, n * C);
    L.probs = Tensor(b, probs);
    L.att = Tensor(b, n * C);
    L.x_mid = Tensor(b, n * C);
    L.h2 = Tensor(b, n * C);
    L.mean2 = Tensor(b, layernorm ? n : 0);
    L.rstd2 = Tensor(b, n);
    L.fc = Tensor(b, n * F);
    L.fc2 = Tensor(b, swiglu ? n * F : 0);
    L.act = Tensor(b, n * F);
    a->layers.push_back(std::move(L));
  }
  a->hf = Tensor(b, n * C);
  a->meanf = Tensor(b, layernorm ? n : 0);
  a->rstdf = Tensor(b, n);
  for (Tensor* t : {&a->dx, &a->dh, &a->dq, &a->dk, &a->dv, &a->datt}) *t = Tensor(b, n * C);
  for (Tensor* t : {&a->dfc, &a->dact}) *t = Tensor(b, n * F);
  a->dfc2 = Tensor(b, swiglu ? n * F : 0);
  a->logit_rows = std::clamp<size_t>(kLogitBudget / config_.vocab_size, 1, n);
  a->logits = Tensor(b, a->logit_rows * config_.vocab_size);
  a->losses = Tensor(b, n);
  acts_ = std::move(a);
}

namespace {

// y = x Wᵀ for x (n, in) and W (out, in).
void linear(Backend& b, const float* x, const float* w, size_t n, int in, int out, float* y) {
  b.gemm(N, T, int(n), out, in, 1.0f, x, in, w, in, 0.0f, y, out);
}
// dW += dyᵀ x ; dx = beta dx + dy W.
void linear_backward(Backend& b, const float* dy, const float* x, const float* w, size_t n, int in,
                     int out, float* dw, float* dx, float dx_beta) {
  b.gemm(T, N, out, in, int(n), 1.0f, dy, out, x, in, 1.0f, dw, in);
  b.gemm(N, N, int(n), in, out, 1.0f, dy, out, w, in, dx_beta, dx, in);
}

}  // namespace

double Gpt::forward_backward(const int32_t* inputs, const int32_t* targets, int batch,
                             float loss_scale) {
  return forward(inputs, targets, batch, true, loss_scale);
}

double Gpt::forward_loss(const int32_t* inputs, const int32_t* targets, int batch) {
  return forward(inputs, targets, batch, false, 0.0f);
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
  const int C = config_.hidden, F = config_.ffn_hidden;
  const bool layernorm = config_.norm == "layernorm", swiglu = config_.activation == "swiglu";
  const float eps = float(config_.norm_eps);
  const AttentionShape shape{batch, config_.seq_len, config_.n_head, config_.head_dim()};
  const float* W = weights_.data();
  auto w = [&](const std::string& name) { return W + param(name).offset; };
  auto wopt = [&](const std::string& name) { return layernorm ? w(name) : nullptr; };
  auto norm = [&](const float* x, const std::string& prefix, float* out, Tensor& mean, Tensor& rstd) {
    if (layernorm)
      b.layernorm_forward(x, w(prefix + ".gain"), wopt(prefix + ".bias"), n, C, eps, out,
                          mean.data(), rstd.data());
    else
      b.rmsnorm_forward(x, w(prefix + ".gain"), n, C, eps, out, rstd.data());
  };

  b.embedding_forward(inputs, n, w("wte"), C, a.resid[0].data());
  for (int l = 0; l < config_.n_layer; ++l) {
    auto& L = a.layers[l];
    const std::string p = "blocks." + std::to_string(l) + ".";
    norm(a.resid[l].data(), p + "norm1", L.h1.data(), L.mean1, L.rstd1);
    linear(b, L.h1.data(), w(p + "attn.wq"), n, C, C, L.q.data());
    linear(b, L.h1.data(), w(p + "attn.wk"), n, C, C, L.k.data());
    linear(b, L.h1.data(), w(p + "attn.wv"), n, C, C, L.v.data());
    b.rope(L.q.data(), shape, shape.head_dim, rope_cos_.data(), rope_sin_.data(), false);
    b.rope(L.k.data(), shape, shape.head_dim, rope_cos_.data(), rope_sin_.data(), false);
    b.attention_forward(L.q.data(), L.k.data(), L.v.data(), shape, L.probs.data(), L.att.data());
    linear(b, L.att.data(), w(p + "attn.wo"), n, C, C, L.x_mid.data());
    b.axpy(a.resid[l].data(), L.x_mid.data(), n * C, 1.0f);
    norm(L.x_mid.data(), p + "norm2", L.h2.data(), L.mean2, L.rstd2);
    if (swiglu) {
      linear(b, L.h2.data(), w(p + "mlp.w_gate"), n, C, F, L.fc.data());
      linear(b, L.h2.data(), w(p + "mlp.w_up"), n, C, F, L.fc2.data());
      b.swiglu_forward(L.fc.data(), L.fc2.data(), n * F, L.act.data());
    } else {
      linear(b, L.h2.data(), w(p + "mlp.w_in"), n, C, F, L.fc.data());
      b.gelu_forward(L.fc.data(), n * F, L.act.data());
    }
    linear(b, L.act.data(), w(p + "mlp.w_out"), n, F, C, a.resid[l + 1].data());
    b.axpy(L.x_mid.data(), a.resid[l + 1].data(), n * C, 1.0f);
  }
  norm(a.resid[config_.n_layer].data(), "norm_f", a.hf.data(), a.meanf, a.rstdf);

  double loss_sum = 0;
  head_and_loss(targets, n, backward ? loss_scale / float(n) : 0.0f, loss_sum);
  if (backward) backward_blocks(inputs, batch);
  return loss_sum / double(n);
}

// Logits, loss and (with grad_scale != 0) the head's backward, a chunk of rows at a time so the
// (tokens, vocab) logits never exist whole. Leaves dL/d hf in a.dh.
void Gpt::head_and_loss(const int32_t* targets, size_t n, float grad_scale, double& loss_sum) {
  Activations& a = *acts_;
  Backend& b = backend_;
  const int C = config_.hidden, V = config_.vocab_size;
  const std::string head = config_.tie_embeddings ? "wte" : "lm_head";
  const float* wh = weights_.data() + param(head).offset;
  float* dwh = grads_.data() + param(head).offset;
  for (size_t r0 = 0; r0 < n; r0 += a.logit_rows) {
    const size_t rows = std::min(a.logit_rows, n - r0);
    const float* h = a.hf.data() + r0 * C;
    linear(b, h, wh, rows, C, V, a.logits.data());
    b.softmax_cross_entropy(a.logits.data(), targets + r0, rows, V, a.losses.data() + r0,
                            grad_scale);
    if (grad_scale != 0.0f)
      linear_backward(b, a.logits.data(), h, wh, rows, C, V, dwh, a.dh.data() + r0 * C, 0.0f);
  }
  std::vector<float> losses(n);
  b.download(losses.data(), a.losses.data(), n);
  for (float l : losses) loss_sum += l;
}

void Gpt::backward_blocks(const int32_t* inputs, int batch) {
  Activations& a = *acts_;
  Backend& b = backend_;
  const size_t n = a.tokens;
  const int C = config_.hidden, F = config_.ffn_hidden;
  const bool layernorm = config_.norm == "layernorm", swiglu = config_.activation == "swiglu";
  const AttentionShape shape{batch, config_.seq_len, config_.n_head, config_.head_dim()};
  const float* W = weights_.data();
  float* G = grads_.data();
  auto w = [&](const std::string& name) { return W + param(name).offset; };
  auto g = [&](const std::string& name) { return G + param(name).offset; };
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
    const std::string p = "blocks." + std::to_string(l) + ".";
    // MLP branch: dx is dL/d resid[l+1].
    linear_backward(b, a.dx.data(), L.act.data(), w(p + "mlp.w_out"), n, F, C, g(p + "mlp.w_out"),
                    a.dact.data(), 0.0f);
    if (swiglu) {
      b.swiglu_backward(a.dact.data(), L.fc.data(), L.fc2.data(), n * F, a.dfc.data(),
                        a.dfc2.data());
      linear_backward(b, a.dfc.data(), L.h2.data(), w(p + "mlp.w_gate"), n, C, F,
                      g(p + "mlp.w_gate"), a.dh.data(), 0.0f);
      linear_backward(b, a.dfc2.data(), L.h2.data(), w(p + "mlp.w_up"), n, C, F,
                      g(p + "mlp.w_up"), a.dh.data(), 1.0f);
    } else {
      b.gelu_backward(a.dact.data(), L.fc.data(), n * F, a.dfc.data());
      linear_backward(b, a.dfc.data(), L.h2.data(), w(p + "mlp.w_in"), n, C, F, g(p + "mlp.w_in"),
                      a.dh.data(), 0.0f);
    }
    norm_backward(a.dh.data(), L.x_mid.data(), p + "norm2", L.mean2, L.rstd2);
    // Attention branch: dx is now dL/d x_mid.
    linear_backward(b, a.dx.data(), L.att.data(), w(p + "attn.wo"), n, C, C, g(p + "attn.wo"),
                    a.datt.data(), 0.0f);
    b.attention_backward(a.datt.data(), L.q.data(), L.k.data(), L.v.data(), L.probs.data(), shape,
                         a.dq.data(), a.dk.data(), a.dv.data());
    b.rope(a.dq.data(), shape, shape.head_dim, rope_cos_.data(), rope_sin_.data(), true);
    b.rope(a.dk.data(), shape, shape.head_dim, rope_cos_.data(), rope_sin_.data(), true);
    linear_backward(b, a.dq.data(), L.h1.data(), w(p + "attn.wq"), n, C, C, g(p + "attn.wq"),
                    a.dh.data(), 0.0f);
    linear_backward(b, a.dk.data(), L.h1.data(), w(p + "attn.wk"), n, C, C, g(p + "attn.wk"),
                    a.dh.data(), 1.0f);
    linear_backward(b, a.dv.data(), L.h1.data(), w(p + "attn.wv"), n, C, C, g(p + "attn.wv"),
                    a.dh.data(), 1.0f);
    norm_backward(a.dh.data(), a.resid[l].data(), p + "norm1", L.mean1, L.rstd1);
  }
  b.embedding_backward(inputs, n, a.dx.data(), C, g("wte"));
}

}  // namespace trainer_core
