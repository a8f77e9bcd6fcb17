// Training FLOPs per token (docs/science.md): 6·N_active + 6·seq·Σ_layers n_head·(d_qk + d_v),
// N_active = non-embedding weights a token touches plus the output head (for MoE: the router,
// the top_k routed experts and the shared expert). Inference is a third.
#pragma once

#include "trainer_core/config/train_config.h"

namespace trainer_core {

struct FlopsBreakdown {
  double active_params = 0;   // N_active
  double attention_term = 0;  // 6·seq·Σ n_head·(d_qk + d_v)
  double train_per_token = 0;
  double inference_per_token = 0;
};

FlopsBreakdown flops_per_token(const ModelConfig& model);

}  // namespace trainer_core
