// Decoder-only transformer with hand-written backward: token embedding (tied head by default),
// RoPE, pre-norm blocks of causal multi-head attention and a GELU or SwiGLU MLP, final norm,
// cross-entropy. All parameters live in one flat buffer (and grads in another) so that
// clipping, optimizer routing and checkpoints work on plain ranges.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "trainer_core/backend/backend.h"
#include "trainer_core/config/train_config.h"

namespace trainer_core {

// Which optimizer family a parameter belongs to (REFERENCE.md, Muon): block matrices go to
// Muon, everything else to AdamW.
enum class ParamRole { kEmbedding, kHead, kNormGain, kNormBias, kBlockMatrix };

struct ParamInfo {
  std::string name;
  ParamRole role;
  int rows;  // a linear weight is (out, in): rows = out features
  int cols;
  size_t offset;
  size_t size() const { return size_t(rows) * cols; }
};

class Gpt {
 public:
  Gpt(const ModelConfig& config, Backend& backend);
  ~Gpt();

  const ModelConfig& config() const { return config_; }
  const std::vector<ParamInfo>& params() const { return params_; }
  const ParamInfo& param(const std::string& name) const;
  size_t num_params() const { return num_params_; }
  float* weights() { return weights_.data(); }
  float* grads() { return grads_.data(); }

  // GPT-2 style init: N(0, init_std), residual output projections scaled by 1/sqrt(2 n_layer).
  void init_weights(uint64_t seed);
  void zero_grads();

  // One micro-batch of `batch` sequences of seq_len tokens. Adds loss_scale * d(mean loss)/dθ to
  // the gradients and returns the mean token cross-entropy (nats) of this micro-batch.
  double forward_backward(const int32_t* inputs, const int32_t* targets, int batch,
                          float loss_scale);
  // Mean cross-entropy without gradients (evaluation).
  double forward_loss(const int32_t* inputs, const int32_t* targets, int batch);

 private:
  struct Activations;
  void ensure_activations(int batch);
  double forward(const int32_t* inputs, const int32_t* targets, int batch, bool backward,
                 float loss_scale);
  void head_and_loss(const int32_t* targets, size_t tokens, float grad_scale, double& loss_sum);
  void backward_blocks(const int32_t* inputs, int batch);

  ModelConfig config_;
  Backend& backend_;
  std::vector<ParamInfo> params_;
  size_t num_params_ = 0;
  Tensor weights_, grads_;
  Tensor rope_cos_, rope_sin_;
  std::unique_ptr<Activations> acts_;
};

}  // namespace trainer_core
