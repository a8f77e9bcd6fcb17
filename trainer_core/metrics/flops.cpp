#include "trainer_core/metrics/flops.h"

namespace trainer_core {

// Weights one token touches in one block: all attention projections; for MoE the router, its
// top_k experts and the shared expert.
FlopsBreakdown flops_per_token(const ModelConfig& m) {
  const double C = m.hidden, F = m.ffn_hidden, V = m.vocab_size, hd = m.head_dim(), H = m.n_head;
  double attention = 4 * C * C;
  if (m.attention == Attention::kMla) {
    const double r = m.resolved_kv_latent(), dr = m.resolved_rope_dim(), dn = hd - dr,
                 rq = m.q_latent_dim;
    const double query = rq > 0 ? rq * C + H * hd * rq : H * hd * C;
    attention = query + dr * C + r * C + H * dn * r + H * hd * r + C * H * hd;
  }
  double ffn = (m.activation == Activation::kSwiglu ? 3 : 2) * C * F;
  if (m.ffn == Ffn::kMoe)
    ffn = m.n_experts * C + m.top_k * 2 * C * m.resolved_expert_hidden() +
          (m.shared_expert ? 2 * C * F : 0);
  const double per_layer = attention + ffn;
  FlopsBreakdown f;
  f.active_params = m.n_layer * per_layer + V * C;  // blocks + output head
  f.attention_term = 6.0 * m.seq_len * m.n_layer * m.n_head * (hd + hd);
  f.train_per_token = 6.0 * f.active_params + f.attention_term;
  f.inference_per_token = f.train_per_token / 3.0;
  return f;
}

}  // namespace trainer_core
