// The run's optimizer: AdamW for everything (name "adamw"), or Muon for the transformer blocks'
// 2-D matrices with AdamW for embeddings, head and norm parameters (name "muon").
//
// Decisions (docs/science.md states them):
// - Weight decay applies to matrices only (embedding, head, block matrices), never to norm gains
//   or biases, as in nanoGPT and Moonlight.
// - One learning rate for both families: Muon's RMS matching exists so that AdamW's lr transfers.
// - Muon rows are the weight's out dimension (weights are stored (out, in)); Q, K, V and every
//   other projection are whole matrices, never split per head.
// - per_layer_dynamic RMS matching: each Muon matrix keeps Adam moments (β1, β2, ε of the
//   config) of its own gradient; the target is r_t, an EMA (factor muon.dynamic_rms_ema, bias
//   corrected) of RMS(m̂/(√v̂+ε)), the AdamW update that layer would have taken; then
//   O ← r_t / RMS(O) · O.
// - Data parallelism: with a communicator of N > 1 ranks, each Muon matrix has one owner rank
//   (largest matrices first, each to the rank with the least Newton-Schulz work so far). Every
//   rank updates every momentum buffer; only the owner orthogonalizes, into a zero-filled buffer
//   of all Muon matrices, and one all-reduce gathers the results (x + 0 = x exactly, so ranks
//   agree bit for bit and match a single rank). One collective instead of one per matrix, at
//   twice the bytes of an all-gather.
// - Muon matrices of one shape up to a transpose are orthogonalized together, in batches of up to
//   2^21 floats (NewtonSchulz::run_batch): one batched GEMM per product and iteration instead of
//   one per matrix, the overhead that dominated Muon's step on small models.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainer_core/backend/backend.h"
#include "trainer_core/config/train_config.h"
#include "trainer_core/metrics/named_value.h"
#include "trainer_core/model/gpt.h"
#include "trainer_core/optim/newton_schulz.h"
#include "trainer_core/parallel/communicator.h"

namespace trainer_core {

enum class UpdateRule { kAdamW, kMuon };

// Which rule updates a parameter under a given optimizer name.
UpdateRule route_parameter(OptimizerKind optimizer, ParamRole role);

// The optimizer's matrix-multiply FLOPs per step: Muon's orthogonalization of every matrix it
// updates (every expert of an MoE layer, not only the active ones), once per step whatever the
// number of ranks or micro-batches (orthogonalization_flops). AdamW's and Muon's elementwise
// work is not counted, as the model's 6N does not count its own. 0 for AdamW.
double optimizer_flops_per_step(const std::vector<ParamInfo>& params,
                                const OptimizerConfig& config);

// muP for Muon (docs/science.md, "muP"): the factor on a matrix's update that makes its
// spectral norm sqrt(fan_out_mult / fan_in_mult) times the same matrix's at the base width (the
// spectral condition of Yang, Simon & Bernstein 2023), given how the RMS-matching rule's scale
// depends on the matrix's shape: 1 / sqrt(m) for a hidden matrix under moonlight (and
// per_layer_dynamic, whose scale grows the same way), 1 under original and none. Exactly 1 when
// both multipliers are 1 (the standard parametrization, or the base width).
double muon_mup_factor(const ParamInfo& p, RmsMatching rule);

class Optimizer {
 public:
  // Binds to flat parameter/gradient buffers described by `params`. With a communicator of
  // several ranks, Muon's orthogonalization is split across them (see above); the gradients must
  // already be summed over ranks when step() is called.
  Optimizer(const OptimizerConfig& config, const std::vector<ParamInfo>& params, float* weights,
            const float* grads, Backend& backend, Communicator* communicator = nullptr);

  // One update with learning rate lr (the schedule's value for this step). With `diagnostics`,
  // also appends what researchers plot about the optimizer (costs a copy of the weights and a
  // few reductions; the trainer asks every metrics.diagnostics_every steps):
  //   opt/lr/adamw, opt/lr/muon              the lr each family used
  //   opt/G/grad_norm                        L2 norm of the (clipped) gradient of group G
  //   opt/G/update_rms, opt/G/weight_rms     RMS of the step's change (weight decay included)
  //                                          and of the weights after it
  //   opt/muon/rms_scale                     mean RMS-matching scale in force over Muon matrices
  //   opt/muon/ns_residual                   ‖XXᵀ − I‖_F / √k of the first Muon matrix's
  //                                          Newton-Schulz output X (k = its smaller side)
  // Groups G: embedding, blocks.L (each layer), final_norm, head.
  void step(float lr, std::vector<NamedValue>* diagnostics = nullptr);
  int64_t steps_taken() const { return steps_taken_; }
  // How many Muon matrices this rank orthogonalizes (all of them without a communicator).
  int muon_matrices_owned() const;

  // Everything a checkpoint must hold to continue bit-identically, in a fixed order.
  struct StateView {
    std::vector<Tensor*> tensors;
    std::vector<double*> scalars;
    int64_t* steps_taken;
  };
  StateView state();

 private:
  struct ParamState {
    const ParamInfo* info;
    UpdateRule rule;
    Tensor m, v;              // AdamW moments (also the dynamic-RMS moments of a Muon matrix)
    Tensor momentum;          // Muon buffer
    double rms_ema = 0;       // per_layer_dynamic target before bias correction
    int owner = 0;            // rank that orthogonalizes this Muon matrix
    size_t split_offset = 0;  // its place in split_orthogonal_
    size_t batch_offset = 0;  // its place in its batch's muon_direction_ and muon_orthogonal_
    double last_scale = 0;    // Muon: the RMS-matching scale of the last update
    double mup_factor = 1;    // Muon: muon_mup_factor
  };
  // Muon matrices of one shape up to a transpose, orthogonalized together (NewtonSchulz::
  // run_batch): indices into states_, in parameter order.
  struct MuonBatch {
    std::vector<size_t> members;
    size_t floats = 0;  // their sizes summed
  };
  // Diagnostics (see step()): the residual of one Newton-Schulz output, and the per-group figures.
  double newton_schulz_residual(const float* x, int rows, int cols);
  void append_diagnostics(float lr, std::vector<NamedValue>& out);
  void adamw_update(ParamState& s, float lr);
  float adamw_lr(float scheduled_lr) const;  // the lr of AdamW-updated parameters at this step
  // Every member's momentum and, for those this rank owns, Newton-Schulz: into
  // split_orthogonal_ when the work is split across ranks, else into muon_orthogonal_ at the
  // member's batch_offset.
  void muon_orthogonalize(const MuonBatch& batch);
  void muon_apply(ParamState& s, const float* ortho, float lr);
  void assign_muon_owners();
  void plan_muon_batches();
  bool owns(const ParamState& s) const;

  OptimizerConfig config_;
  Backend& backend_;
  float* weights_;
  const float* grads_;
  std::vector<ParamState> states_;
  NewtonSchulz newton_schulz_;
  std::vector<MuonBatch> muon_batches_;
  std::vector<NsMatrix> ns_batch_;           // one batch's owned members; a member: no allocation
  Tensor muon_direction_, muon_orthogonal_;  // scratch sized for the largest batch
  Communicator* communicator_;
  Tensor split_orthogonal_;  // every Muon matrix's result, when the work is split across ranks
  int64_t steps_taken_ = 0;
  Tensor weights_before_, gram_;     // diagnostics scratch, allocated on first use
  double sampled_ns_residual_ = -1;  // of this step, when diagnostics were asked for
};

}  // namespace trainer_core
