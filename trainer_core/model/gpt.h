// Decoder-only transformer with hand-written backward: token embedding (tied head by default),
// RoPE, pre-norm blocks of causal attention (multi-head, or latent: MLA) and a feed-forward
// (GELU or SwiGLU MLP, or a mixture of GELU experts), final norm, cross-entropy. All parameters
// live in one flat buffer (and grads in another) so that clipping, optimizer routing and
// checkpoints work on plain ranges.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "trainer_core/backend/backend.h"
#include "trainer_core/config/train_config.h"

namespace trainer_core {

// Which optimizer family a parameter belongs to (docs/science.md, Muon): block matrices go to
// Muon, everything else to AdamW.
enum class ParamRole { kEmbedding, kHead, kNormGain, kNormBias, kBlockMatrix };

// What the mixture-of-experts layers did in the last forward pass (averaged over MoE layers).
struct MoeStats {
  double aux_loss = 0;              // summed over layers, already multiplied by its coefficient
  std::vector<double> expert_load;  // fraction of routed token slots per expert; sums to 1
};

struct ParamInfo {
  std::string name;
  ParamRole role;
  int rows;  // a linear weight is (out, in): rows = out features
  int cols;
  size_t offset;
  size_t size() const { return size_t(rows) * cols; }
  // muP (docs/science.md, "muP"): how much wider than at the base width each side is: the width
  // multiplier m for a side that grows with width, 1 for a fixed one (the router's n_experts, MLA's
  // rope-key features) and for every side in the standard parametrization.
  double fan_in_mult = 1.0;
  double fan_out_mult = 1.0;
  // AdamW's lr and weight decay for this parameter are lr · adamw_lr_scale and
  // wd · adamw_wd_scale: 1 / fan_in_mult and fan_in_mult for block matrices (lr · wd, the decay
  // per step, stays what it is at the base width, as in the mup package), 1 otherwise.
  float adamw_lr_scale = 1.0f;
  float adamw_wd_scale = 1.0f;
};

// A GEMM input: fp32, and/or already rounded to bf16 (a bf16 GEMM then reads it as it is).
struct GemmInput {
  GemmInput(const float* x = nullptr) : f32(x) {}  // NOLINT: an fp32 buffer is a GEMM input
  GemmInput(const float* x, const Bf16* x16) : f32(x), bf16(x16) {}
  GemmInput at(size_t offset) const {
    return {f32 ? f32 + offset : nullptr, bf16 ? bf16 + offset : nullptr};
  }
  const float* f32 = nullptr;
  const Bf16* bf16 = nullptr;
};

// A GEMM input the model keeps for its backward, in the model's precision: fp32, or only its
// bf16 rounding (half the bytes; rounded once, read in that form by forward and backward).
struct KeptInput {
  KeptInput() = default;
  KeptInput(Backend& backend, size_t count, Precision precision);
  GemmInput input() const { return {f32.data(), bf16.data()}; }
  Tensor f32;
  Bf16Tensor bf16;
};

// What one block's feed-forward keeps from its forward (for its backward), sized for `tokens`
// tokens. Training keeps one set per layer; generation reuses one set across layers.
struct FfnBuffers {
  FfnBuffers() = default;
  FfnBuffers(Backend& backend, const ModelConfig& config, size_t tokens);
  Tensor fc, fc2;  // dense MLP: pre-activations; fc2: SwiGLU's up projection
  KeptInput act;
  // MoE, routed on the backend (Backend::moe_route): token slots grouped by expert;
  // xs/us/as/ys are (slots, ...) in that order.
  IntTensor slot_token, token_slot, expert_offset;
  Tensor router_logits, router_probs, slot_gate, expert_stats;  // stats: shares, then mean probs
  std::vector<int32_t> offsets;  // expert_offset on the host: the experts' GEMM shapes
  std::vector<float> stats;      // expert_stats on the host: loads, balance loss
  Tensor xs, us, as, ys, shared_fc, shared_act;
};

// Parameter names: a block's parameters start with block_prefix(layer) ("blocks.3."); the LM
// head is the embedding when tied.
std::string block_prefix(int layer);
const char* head_param_name(const ModelConfig& config);

// Lifetime: a Gpt holds `backend` by reference (every tensor it owns lives there); the backend
// must outlive it. Threads: not thread-safe; one thread uses a Gpt at a time (training, or a
// Generator between training steps: forward passes share its activation and bf16 scratch).
// Parameters are named as params() lists them; param(), weight() and the projections look a
// name up in an index built once, not by scanning the list.
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
  const MoeStats& moe_stats() const { return moe_stats_; }
  // Called during forward_backward as soon as a range of the gradients [offset, offset + count)
  // will receive nothing more from this pass: each block's parameters as its backward ends (last
  // block first), then the rest (embedding, final norm, head). Together the ranges cover every
  // parameter once. Data parallelism starts each range's all-reduce there, overlapping the rest
  // of the backward. Empty: not called.
  using GradientsReady = std::function<void(size_t offset, size_t count)>;
  void set_gradients_ready(GradientsReady ready) { gradients_ready_ = std::move(ready); }

  // Pieces of the forward pass that generation (Generator) shares, on its own buffers.
  const float* weight(const std::string& name) const;
  // y = x Wᵀ for x (n, in) and the weight `name` (out, in), in the model's precision: fp32, or
  // bf16 (x and W rounded to bf16, the products summed in fp32, y fp32). Rows of y are ld_y
  // floats apart (0: out).
  void project(GemmInput x, const std::string& name, size_t n, int in, int out, float* y,
               int ld_y = 0) const;
  // Called by project() after each projection with its input and its output y (before the
  // head's logit multiplier): coordinate checks (train/coord_check.h) read activations there.
  // Unset (the default): not called.
  using ProjectionProbe = std::function<void(const std::string& name, GemmInput x, size_t n, int in,
                                             int out, const float* y, int ld_y)>;
  void set_projection_probe(ProjectionProbe probe) { probe_ = std::move(probe); }
  // The logits of hidden states h (n, hidden) through the head, times logit_multiplier(); rows
  // ld floats apart (0: vocab_size). Training, evaluation and generation all read logits so.
  void head_logits(GemmInput h, size_t n, float* logits, int ld = 0) const;
  // muP's output multiplier: model.mup_output_multiplier / width multiplier (1 in the standard
  // parametrization).
  float logit_multiplier() const {
    return float(config_.mup_output_multiplier / config_.width_multiplier());
  }
  // bf16 precision: rounds the weights into their bf16 copy. Each forward pass does it; a
  // generator does it before it reads weights an optimizer may have changed.
  void refresh_bf16_weights() const;
  const float* rope_cos() const { return rope_cos_.data(); }  // (seq_len, rope dims / 2)
  const float* rope_sin() const { return rope_sin_.data(); }
  // The norm named `prefix` ("blocks.3.norm1", "norm_f") of n rows of x; mean: LayerNorm only.
  void norm_forward(const std::string& prefix, const float* x, size_t n, float* out, float* mean,
                    float* rstd) const;
  // Block `layer`'s feed-forward of h (n, hidden) into out (n, hidden), overwritten; h.f32 must
  // be set (MoE gathers its rows). scratch: n·max(hidden, ffn_hidden) floats. Returns the layer's
  // MoE balance loss, scaled by its coefficient (0 if dense).
  double ffn_forward(int layer, GemmInput h, size_t n, FfnBuffers& buffers, float* out,
                     float* scratch) const;

 private:
  struct Activations;
  void ensure_activations(int batch);
  double forward(const int32_t* inputs, const int32_t* targets, int batch, bool backward,
                 float loss_scale);
  void head_and_loss(const int32_t* targets, size_t tokens, float grad_scale);
  void backward_blocks(const int32_t* inputs, int batch);
  // Per-block pieces; each reads its input activations and writes its output (forward) or adds
  // its input gradient into acts.dh / acts.dx (backward).
  void attention_forward(int layer, int batch);
  void attention_backward(int layer, int batch);
  void ffn_backward(int layer);
  const float* w(const std::string& name) const { return weight(name); }
  float* g(const std::string& name);
  bool bf16() const { return config_.precision == Precision::kBf16; }
  // Runs produce(target) so that it writes x: into x itself (fp32), or into staging (n floats),
  // then rounded into x (bf16).
  template <typename Produce>
  void produce_kept(KeptInput& x, size_t n, float* staging, Produce&& produce) const {
    if (!x.bf16.data()) return produce(x.f32.data());
    produce(staging);
    backend_.to_bf16(staging, n, x.bf16.data());
  }
  // dW += dyᵀ x into the weight's gradient; dx = dx_beta dx + dy W; in the model's precision.
  // Rows of dy are ld_dy floats apart (0: out).
  void project_backward(const float* dy, GemmInput x, const std::string& name, size_t n, int in,
                        int out, float* dx, float dx_beta, int ld_dy = 0);
  // x rounded to bf16 in `scratch` (grown to n when smaller).
  const Bf16* rounded(const float* x, size_t n, Bf16Tensor& scratch) const;

  ModelConfig config_;
  Backend& backend_;
  std::vector<ParamInfo> params_;
  std::unordered_map<std::string, size_t> param_index_;  // name -> position in params_
  size_t num_params_ = 0;
  Tensor weights_, grads_;
  mutable Bf16Tensor weights16_, x16_, dy16_;  // bf16 precision: the weights' copy, operands
  Tensor rope_cos_, rope_sin_;
  std::unique_ptr<Activations> acts_;
  MoeStats moe_stats_;
  float aux_grad_scale_ = 0;  // loss_scale of the current forward_backward (0 in evaluation)
  GradientsReady gradients_ready_;
  ProjectionProbe probe_;
};

}  // namespace trainer_core
