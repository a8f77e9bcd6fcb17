#include "trainer_core/optim/optimizer.h"

#include <algorithm>
#include <cmath>

namespace trainer_core {

UpdateRule route_parameter(const std::string& optimizer_name, ParamRole role) {
  return optimizer_name == "muon" && role == ParamRole::kBlockMatrix ? UpdateRule::kMuon
                                                                      : UpdateRule::kAdamW;
}

Optimizer::Optimizer(const OptimizerConfig& config, const std::vector<ParamInfo>& params,
                     float* weights, const float* grads, Backend& backend,
                     Communicator* communicator)
    : config_(config), backend_(backend), weights_(weights), grads_(grads),
      newton_schulz_(backend), communicator_(communicator) {
  const bool dynamic = config.muon.rms_matching == "per_layer_dynamic";
  size_t largest_muon = 0;
  states_.reserve(params.size());
  for (const auto& p : params) {
    ParamState s;
    s.info = &p;
    s.rule = route_parameter(config.name, p.role);
    if (s.rule == UpdateRule::kAdamW || dynamic) {
      s.m = Tensor(backend, p.size());
      s.v = Tensor(backend, p.size());
      backend.fill(s.m.data(), p.size(), 0.0f);
      backend.fill(s.v.data(), p.size(), 0.0f);
    }
    if (s.rule == UpdateRule::kMuon) {
      s.momentum = Tensor(backend, p.size());
      backend.fill(s.momentum.data(), p.size(), 0.0f);
      largest_muon = std::max(largest_muon, p.size());
    }
    states_.push_back(std::move(s));
  }
  assign_muon_owners();
  muon_direction_ = Tensor(backend, largest_muon);
  // Split across ranks, results land in split_orthogonal_ and this scratch is not needed.
  if (split_orthogonal_.size() == 0) muon_orthogonal_ = Tensor(backend, largest_muon);
}

void Optimizer::assign_muon_owners() {
  const int ranks = communicator_ ? communicator_->size() : 1;
  if (ranks <= 1) return;
  std::vector<ParamState*> muon;
  size_t total = 0;
  for (auto& s : states_)
    if (s.rule == UpdateRule::kMuon) {
      s.split_offset = total;
      total += s.info->size();
      muon.push_back(&s);
    }
  if (muon.empty()) return;
  // Newton-Schulz cost of a (r, c) matrix ~ r·c·min(r, c); stable sort keeps the assignment
  // identical on every rank.
  auto cost = [](const ParamState* s) {
    return double(s->info->size()) * std::min(s->info->rows, s->info->cols);
  };
  std::stable_sort(muon.begin(), muon.end(), [&](auto* a, auto* b) { return cost(a) > cost(b); });
  std::vector<double> load(size_t(ranks), 0.0);
  for (ParamState* s : muon) {
    const auto least = std::min_element(load.begin(), load.end());
    s->owner = int(least - load.begin());
    *least += cost(s);
  }
  split_orthogonal_ = Tensor(backend_, total);
}

int Optimizer::muon_matrices_owned() const {
  const int rank = communicator_ ? communicator_->rank() : 0;
  int owned = 0;
  for (const auto& s : states_) owned += s.rule == UpdateRule::kMuon && s.owner == rank;
  return owned;
}

void Optimizer::step(float lr) {
  ++steps_taken_;
  const bool split = split_orthogonal_.size() > 0;
  if (split) backend_.fill(split_orthogonal_.data(), split_orthogonal_.size(), 0.0f);
  for (auto& s : states_) {
    if (s.rule == UpdateRule::kAdamW) {
      adamw_update(s, adamw_lr(lr));
    } else if (split) {
      muon_orthogonalize(s, s.owner == communicator_->rank(), split_orthogonal_.data() + s.split_offset);
    } else {
      muon_orthogonalize(s, true, muon_orthogonal_.data());
      muon_apply(s, muon_orthogonal_.data(), lr);
    }
  }
  if (!split) return;
  communicator_->all_reduce_sum(split_orthogonal_.data(), split_orthogonal_.size());
  for (auto& s : states_)
    if (s.rule == UpdateRule::kMuon) muon_apply(s, split_orthogonal_.data() + s.split_offset, lr);
}

float Optimizer::adamw_lr(float scheduled_lr) const {
  // A Muon run's AdamW parameters follow the same schedule, scaled to their own peak lr.
  // adamw_lr <= 0 (a config built in code, not parsed): the same lr.
  if (config_.name != "muon" || config_.adamw_lr <= 0 || config_.adamw_lr == config_.lr) return scheduled_lr;
  return float(double(scheduled_lr) * config_.adamw_lr / config_.lr);
}

void Optimizer::adamw_update(ParamState& s, float lr) {
  const ParamInfo& p = *s.info;
  const bool decays = p.role == ParamRole::kEmbedding || p.role == ParamRole::kHead ||
                      p.role == ParamRole::kBlockMatrix;
  const double t = double(steps_taken_);
  backend_.adamw_step(weights_ + p.offset, grads_ + p.offset, s.m.data(), s.v.data(), p.size(), lr,
                      float(config_.beta1), float(config_.beta2), float(config_.eps),
                      decays ? float(config_.weight_decay) : 0.0f,
                      float(1.0 - std::pow(config_.beta1, t)),
                      float(1.0 - std::pow(config_.beta2, t)));
}

void Optimizer::muon_orthogonalize(ParamState& s, bool owner, float* ortho) {
  const ParamInfo& p = *s.info;
  const MuonConfig& mc = config_.muon;
  float* direction = muon_direction_.data();
  backend_.momentum_step(grads_ + p.offset, s.momentum.data(), direction, p.size(), float(mc.momentum),
                         mc.nesterov);
  if (owner) newton_schulz_.run(direction, p.rows, p.cols, mc.ns_coefficients, mc.ns_steps, ortho);
}

void Optimizer::muon_apply(ParamState& s, const float* ortho, float lr) {
  const ParamInfo& p = *s.info;
  const MuonConfig& mc = config_.muon;
  const size_t n = p.size();
  const float* grad = grads_ + p.offset;
  float* weight = weights_ + p.offset;

  double scale = 1.0;
  const double m = p.rows, k = p.cols;
  if (mc.rms_matching == "moonlight") {
    scale = 0.2 * std::sqrt(std::max(m, k));
  } else if (mc.rms_matching == "original") {
    scale = std::sqrt(std::max(1.0, m / k));
  } else if (mc.rms_matching == "per_layer_dynamic") {
    const double t = double(steps_taken_);
    const double adam_rms = backend_.adam_moments_update_rms(
        grad, s.m.data(), s.v.data(), n, float(config_.beta1), float(config_.beta2),
        float(config_.eps), float(1.0 - std::pow(config_.beta1, t)),
        float(1.0 - std::pow(config_.beta2, t)));
    s.rms_ema = mc.dynamic_rms_ema * s.rms_ema + (1.0 - mc.dynamic_rms_ema) * adam_rms;
    const double target = s.rms_ema / (1.0 - std::pow(mc.dynamic_rms_ema, t));
    const double ortho_rms = std::sqrt(backend_.sum_squares(ortho, n) / double(n));
    scale = ortho_rms > 0 ? target / ortho_rms : 0.0;
  }
  const double decay = mc.decoupled_weight_decay ? config_.weight_decay : 0.0;
  backend_.scale(weight, n, float(1.0 - lr * decay));
  backend_.axpy(ortho, weight, n, float(-lr * scale));
}

Optimizer::StateView Optimizer::state() {
  StateView view;
  for (auto& s : states_) {
    for (Tensor* t : {&s.m, &s.v, &s.momentum})
      if (t->size()) view.tensors.push_back(t);
    view.scalars.push_back(&s.rms_ema);
  }
  view.steps_taken = &steps_taken_;
  return view;
}

}  // namespace trainer_core
