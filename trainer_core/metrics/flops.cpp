#include "trainer_core/metrics/flops.h"

namespace trainer_core {

FlopsBreakdown flops_per_token(const ModelConfig& m) {
  const double C = m.hidden, F = m.ffn_hidden, V = m.vocab_size, hd = m.head_dim();
  const double mlp_matrices = m.activation == "swiglu" ? 3 : 2;
  const double per_layer = 4 * C * C + mlp_matrices * C * F;
  FlopsBreakdown f;
  f.active_params = m.n_layer * per_layer + V * C;  // blocks + output head
  f.attention_term = 6.0 * m.seq_len * m.n_layer * m.n_head * (hd + hd);
  f.train_per_token = 6.0 * f.active_params + f.attention_term;
  f.inference_per_token = f.train_per_token / 3.0;
  return f;
}

}  // namespace trainer_core
