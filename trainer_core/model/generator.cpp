#include "trainer_core/model/generator.h"

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace trainer_core {

namespace {

// y = W x for W (out, in) row-major.
void matvec(const float* w, const float* x, int out, int in, float* y) {
  cblas_sgemv(CblasRowMajor, CblasNoTrans, out, in, 1.0f, w, in, x, 1, 0.0f, y, 1);
}
// y = Wᵀ x for W (rows, cols): y has cols entries.
void matvec_t(const float* w, const float* x, int rows, int cols, float* y) {
  cblas_sgemv(CblasRowMajor, CblasTrans, rows, cols, 1.0f, w, cols, x, 1, 0.0f, y, 1);
}

void norm(const ModelConfig& m, const float* x, const float* gain, const float* bias, float* out) {
  const int C = m.hidden;
  double mean = 0, var = 0;
  if (m.norm == Norm::kLayerNorm) {
    for (int i = 0; i < C; ++i) mean += x[i];
    mean /= C;
  }
  for (int i = 0; i < C; ++i) var += (x[i] - mean) * (x[i] - mean);
  const double rstd = 1.0 / std::sqrt(var / C + m.norm_eps);
  for (int i = 0; i < C; ++i)
    out[i] = float((x[i] - mean) * rstd * gain[i] + (bias ? bias[i] : 0.0f));
}

float gelu(float u) {
  return 0.5f * u * (1.0f + std::tanh(0.7978845608f * (u + 0.044715f * u * u * u)));
}

// Rotates the first 2 * table.half features of each of `heads` heads (stride `stride`) to
// position pos, with the same table as training.
void rope(float* x, int heads, int stride, int pos, const RopeTable& table) {
  const float* c = table.cos.data() + size_t(pos) * table.half;
  const float* s = table.sin.data() + size_t(pos) * table.half;
  for (int h = 0; h < heads; ++h) {
    float* v = x + h * stride;
    for (int i = 0; i < table.half; ++i) {
      const float x1 = v[i], x2 = v[i + table.half];
      v[i] = x1 * c[i] - x2 * s[i];
      v[i + table.half] = x1 * s[i] + x2 * c[i];
    }
  }
}

void softmax_inplace(float* x, int n) {
  const float mx = *std::max_element(x, x + n);
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += (x[i] = std::exp(x[i] - mx));
  for (int i = 0; i < n; ++i) x[i] = float(x[i] / sum);
}

}  // namespace

Generator::Generator(const Gpt& model, Backend& backend)
    : config_(model.config()),
      params_(model.params()),
      weights_(model.num_params()),
      rope_(make_rope_table(model.config())) {
  backend.download(weights_.data(), const_cast<Gpt&>(model).weights(), weights_.size());
  reset();
}

const float* Generator::w(const std::string& name) const {
  for (const auto& p : params_)
    if (p.name == name) return weights_.data() + p.offset;
  throw std::out_of_range("no parameter named " + name);
}

double Generator::cache_bytes_per_token() const {
  const double per_layer = config_.attention == Attention::kMla
                               ? config_.resolved_kv_latent() + config_.resolved_rope_dim()
                               : 2.0 * config_.n_head * config_.head_dim();
  return per_layer * config_.n_layer * sizeof(float);
}

void Generator::reset() {
  const bool mla = config_.attention == Attention::kMla;
  const size_t S = config_.seq_len, qkv = size_t(config_.n_head) * config_.head_dim();
  cache_a_.assign(config_.n_layer,
                  std::vector<float>(S * (mla ? config_.resolved_kv_latent() : qkv)));
  cache_b_.assign(config_.n_layer,
                  std::vector<float>(S * (mla ? config_.resolved_rope_dim() : qkv)));
}

const std::vector<float>& Generator::step(int32_t token, int pos) {
  const ModelConfig& m = config_;
  const int C = m.hidden, H = m.n_head, d = m.head_dim(), qkv = H * d, F = m.ffn_hidden;
  const bool mla = m.attention == Attention::kMla, layernorm = m.norm == Norm::kLayerNorm;
  const int dr = m.resolved_rope_dim(), dn = d - dr, r = m.resolved_kv_latent();
  const float scale = 1.0f / std::sqrt(float(d));
  std::vector<float> x(w("wte") + size_t(token) * C, w("wte") + size_t(token) * C + C);
  std::vector<float> h(C), q(qkv), att(qkv), tmp(std::max({C, qkv, F, r, m.n_experts})),
      scores(pos + 1);
  std::vector<float> lat(r), q_lat(r);
  for (int l = 0; l < m.n_layer; ++l) {
    const std::string p = "blocks." + std::to_string(l) + ".";
    norm(m, x.data(), w(p + "norm1.gain"), layernorm ? w(p + "norm1.bias") : nullptr, h.data());
    float* ca = cache_a_[l].data();
    float* cb = cache_b_[l].data();
    if (mla) {
      if (m.q_latent_dim > 0) {
        std::vector<float> cq(m.q_latent_dim);
        matvec(w(p + "attn.wdq"), h.data(), m.q_latent_dim, C, cq.data());
        matvec(w(p + "attn.wuq"), cq.data(), qkv, m.q_latent_dim, q.data());
      } else {
        matvec(w(p + "attn.wq"), h.data(), qkv, C, q.data());
      }
      rope(q.data(), H, d, pos, rope_);
      matvec(w(p + "attn.wdkv"), h.data(), r, C, ca + size_t(pos) * r);
      matvec(w(p + "attn.wkr"), h.data(), dr, C, cb + size_t(pos) * dr);
      rope(cb + size_t(pos) * dr, 1, dr, pos, rope_);
      const float* wuk = w(p + "attn.wuk");  // (H*dn, r)
      const float* wuv = w(p + "attn.wuv");  // (H*d, r)
      for (int hd = 0; hd < H; ++hd) {
        const float* qh = q.data() + hd * d;
        // Absorbed key projection: q_nope · (W_uk,h c) = (W_uk,hᵀ q_nope) · c.
        matvec_t(wuk + size_t(hd) * dn * r, qh + dr, dn, r, q_lat.data());
        for (int j = 0; j <= pos; ++j) {
          float s = 0;
          for (int i = 0; i < dr; ++i) s += qh[i] * cb[size_t(j) * dr + i];
          for (int i = 0; i < r; ++i) s += q_lat[i] * ca[size_t(j) * r + i];
          scores[j] = s * scale;
        }
        softmax_inplace(scores.data(), pos + 1);
        std::fill(lat.begin(), lat.end(), 0.0f);
        for (int j = 0; j <= pos; ++j)
          for (int i = 0; i < r; ++i) lat[i] += scores[j] * ca[size_t(j) * r + i];
        matvec(wuv + size_t(hd) * d * r, lat.data(), d, r, att.data() + hd * d);
      }
    } else {
      matvec(w(p + "attn.wq"), h.data(), qkv, C, q.data());
      matvec(w(p + "attn.wk"), h.data(), qkv, C, ca + size_t(pos) * qkv);
      matvec(w(p + "attn.wv"), h.data(), qkv, C, cb + size_t(pos) * qkv);
      rope(q.data(), H, d, pos, rope_);
      rope(ca + size_t(pos) * qkv, H, d, pos, rope_);
      for (int hd = 0; hd < H; ++hd) {
        for (int j = 0; j <= pos; ++j) {
          float s = 0;
          for (int i = 0; i < d; ++i) s += q[hd * d + i] * ca[size_t(j) * qkv + hd * d + i];
          scores[j] = s * scale;
        }
        softmax_inplace(scores.data(), pos + 1);
        for (int i = 0; i < d; ++i) {
          float acc = 0;
          for (int j = 0; j <= pos; ++j) acc += scores[j] * cb[size_t(j) * qkv + hd * d + i];
          att[hd * d + i] = acc;
        }
      }
    }
    matvec(w(p + "attn.wo"), att.data(), C, qkv, tmp.data());
    for (int i = 0; i < C; ++i) x[i] += tmp[i];
    norm(m, x.data(), w(p + "norm2.gain"), layernorm ? w(p + "norm2.bias") : nullptr, h.data());
    std::vector<float> out(C, 0.0f);
    auto gelu_mlp = [&](const std::string& prefix, int hidden, float gate) {
      std::vector<float> u(hidden), y(C);
      matvec(w(prefix + "w_in"), h.data(), hidden, C, u.data());
      for (float& v : u) v = gelu(v);
      matvec(w(prefix + "w_out"), u.data(), C, hidden, y.data());
      for (int i = 0; i < C; ++i) out[i] += gate * y[i];
    };
    if (m.ffn == Ffn::kMoe) {
      const int E = m.n_experts, K = m.top_k;
      std::vector<float> logits(E);
      matvec(w(p + "moe.router"), h.data(), E, C, logits.data());
      std::vector<int> order(E);
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + K, order.end(), [&](int a, int b) {
        return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
      });
      std::vector<float> gates(K);
      for (int k = 0; k < K; ++k) gates[k] = logits[order[k]];
      softmax_inplace(gates.data(), K);
      for (int k = 0; k < K; ++k)
        gelu_mlp(p + "moe.expert" + std::to_string(order[k]) + ".", m.resolved_expert_hidden(),
                 gates[k]);
      if (m.shared_expert) gelu_mlp(p + "moe.shared.", F, 1.0f);
    } else if (m.activation == Activation::kSwiglu) {
      std::vector<float> gt(F), up(F);
      matvec(w(p + "mlp.w_gate"), h.data(), F, C, gt.data());
      matvec(w(p + "mlp.w_up"), h.data(), F, C, up.data());
      for (int i = 0; i < F; ++i) gt[i] = gt[i] / (1.0f + std::exp(-gt[i])) * up[i];
      matvec(w(p + "mlp.w_out"), gt.data(), C, F, out.data());
    } else {
      gelu_mlp(p + "mlp.", F, 1.0f);
    }
    for (int i = 0; i < C; ++i) x[i] += out[i];
  }
  norm(m, x.data(), w("norm_f.gain"), layernorm ? w("norm_f.bias") : nullptr, h.data());
  logits_.resize(m.vocab_size);
  matvec(w(m.tie_embeddings ? "wte" : "lm_head"), h.data(), m.vocab_size, C, logits_.data());
  return logits_;
}

double Generator::sequence_loss(const std::vector<int32_t>& inputs,
                                const std::vector<int32_t>& targets) {
  reset();
  double total = 0;
  for (size_t t = 0; t < inputs.size(); ++t) {
    const auto& logits = step(inputs[t], int(t));
    const float mx = *std::max_element(logits.begin(), logits.end());
    double sum = 0;
    for (float v : logits) sum += std::exp(double(v - mx));
    total += std::log(sum) + mx - logits[targets[t]];
  }
  return total / double(inputs.size());
}

std::vector<int32_t> Generator::generate(const std::vector<int32_t>& prompt, int count,
                                         GenerationStats* stats) {
  if (prompt.empty()) throw std::invalid_argument("generate: the prompt is empty");
  if (int(prompt.size()) + count > config_.seq_len)
    throw std::invalid_argument("generate: prompt (" + std::to_string(prompt.size()) +
                                ") + tokens (" + std::to_string(count) +
                                ") exceed the model's seq_len " + std::to_string(config_.seq_len));
  reset();
  for (size_t i = 0; i + 1 < prompt.size(); ++i) step(prompt[i], int(i));  // prefill
  std::vector<int32_t> out;
  int32_t next = prompt.back();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < count; ++i) {
    const auto& logits = step(next, int(prompt.size()) - 1 + i);
    next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    out.push_back(next);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (stats)
    *stats = {1, int(prompt.size()), count, seconds > 0 ? count / seconds : 0,
              cache_bytes_per_token()};
  return out;
}

}  // namespace trainer_core
