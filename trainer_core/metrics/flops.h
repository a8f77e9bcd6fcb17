// Training FLOPs (docs/science.md): per token 6·N_active + 6·seq·Σ_layers n_head·(d_qk + d_v),
// N_active = non-embedding weights a token touches plus the output head (for MoE: the router,
// the top_k routed experts and the shared expert); inference is a third. Per optimizer step,
// the optimizer's own (Muon's orthogonalization: optimizer_flops_per_step in optim/optimizer.h),
// which does not scale with the tokens of a step, so its share falls as the batch grows.
#pragma once

#include "trainer_core/config/train_config.h"

namespace trainer_core {

struct FlopsBreakdown {
  double active_params = 0;   // N_active
  double attention_term = 0;  // 6·seq·Σ n_head·(d_qk + d_v)
  double train_per_token = 0;
  double inference_per_token = 0;
  // The optimizer's FLOPs per step; NaN where unknown (a record written before it was counted).
  double optimizer_per_step = 0;
  // The training FLOPs of `steps` optimizer steps over `tokens` tokens (fractional steps: an
  // interpolated target crossing).
  double training(double tokens, double steps) const {
    return tokens * train_per_token + steps * optimizer_per_step;
  }
};

FlopsBreakdown flops_per_token(const ModelConfig& model);

}  // namespace trainer_core
