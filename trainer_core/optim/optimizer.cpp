#include "trainer_core/optim/optimizer.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace trainer_core {

UpdateRule route_parameter(OptimizerKind optimizer, ParamRole role) {
  return optimizer == OptimizerKind::kMuon && role == ParamRole::kBlockMatrix ? UpdateRule::kMuon
                                                                              : UpdateRule::kAdamW;
}

double optimizer_flops_per_step(const std::vector<ParamInfo>& params,
                                const OptimizerConfig& config) {
  double total = 0;
  for (const ParamInfo& p : params)
    if (route_parameter(config.name, p.role) == UpdateRule::kMuon)
      total += orthogonalization_flops(p.rows, p.cols, config.muon.ns_coefficients,
                                       config.muon.ns_steps);
  return total;
}

namespace {
// How an RMS-matching rule's scale depends on the matrix's shape (rows, cols); per_layer_dynamic
// matches AdamW's update RMS, which does not depend on shape, against the orthogonalized
// update's, 1 / sqrt(max(rows, cols)): it grows as moonlight's does.
double rms_matching_shape_scale(RmsMatching rule, double rows, double cols) {
  switch (rule) {
    case RmsMatching::kMoonlight:
    case RmsMatching::kPerLayerDynamic:
      return std::sqrt(std::max(rows, cols));
    case RmsMatching::kOriginal:
      return std::sqrt(std::max(1.0, rows / cols));
    case RmsMatching::kNone:
      return 1.0;
  }
  return 1.0;
}
}  // namespace

double muon_mup_factor(const ParamInfo& p, RmsMatching rule) {
  if (p.fan_in_mult == 1.0 && p.fan_out_mult == 1.0) return 1.0;
  // The orthogonalized update has spectral norm 1 at every width; the rule's scale times this
  // factor must grow as sqrt(fan_out_mult / fan_in_mult) from the base width's shape.
  const double base_scale =
      rms_matching_shape_scale(rule, p.rows / p.fan_out_mult, p.cols / p.fan_in_mult);
  return std::sqrt(p.fan_out_mult / p.fan_in_mult) * base_scale /
         rms_matching_shape_scale(rule, p.rows, p.cols);
}

Optimizer::Optimizer(const OptimizerConfig& config, const std::vector<ParamInfo>& params,
                     float* weights, const float* grads, Backend& backend,
                     Communicator* communicator)
    : config_(config),
      backend_(backend),
      weights_(weights),
      grads_(grads),
      newton_schulz_(backend),
      communicator_(communicator) {
  const bool dynamic = config.muon.rms_matching == RmsMatching::kPerLayerDynamic;
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
      s.mup_factor = muon_mup_factor(p, config.muon.rms_matching);
      s.momentum = Tensor(backend, p.size());
      backend.fill(s.momentum.data(), p.size(), 0.0f);
    }
    states_.push_back(std::move(s));
  }
  assign_muon_owners();
  plan_muon_batches();
  size_t largest_batch = 0;
  for (const MuonBatch& b : muon_batches_) largest_batch = std::max(largest_batch, b.floats);
  muon_direction_ = Tensor(backend, largest_batch);
  // Split across ranks, results land in split_orthogonal_ and this scratch is not needed.
  if (split_orthogonal_.size() == 0) muon_orthogonal_ = Tensor(backend, largest_batch);
}

void Optimizer::plan_muon_batches() {
  // Small enough that a batch's scratch stays small beside the model; large enough to hold every
  // hidden matrix of one shape of a small model, where the per-matrix overhead is worst.
  constexpr size_t kBatchFloats = size_t(1) << 21;
  auto wide_shape = [](const ParamInfo& p) {
    return std::pair{std::min(p.rows, p.cols), std::max(p.rows, p.cols)};
  };
  for (size_t i = 0; i < states_.size(); ++i) {
    ParamState& s = states_[i];
    if (s.rule != UpdateRule::kMuon) continue;
    // The latest batch of this shape takes the matrix while it has room (a matrix larger than
    // the budget gets a batch of its own).
    auto open = std::find_if(muon_batches_.rbegin(), muon_batches_.rend(), [&](const auto& b) {
      return wide_shape(*states_[b.members.front()].info) == wide_shape(*s.info);
    });
    if (open == muon_batches_.rend() || open->floats + s.info->size() > kBatchFloats) {
      muon_batches_.emplace_back();
      open = muon_batches_.rbegin();
    }
    s.batch_offset = open->floats;
    open->floats += s.info->size();
    open->members.push_back(i);
  }
}

bool Optimizer::owns(const ParamState& s) const {
  return !communicator_ || s.owner == communicator_->rank();
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
  int owned = 0;
  for (const auto& s : states_) owned += s.rule == UpdateRule::kMuon && owns(s);
  return owned;
}

void Optimizer::step(float lr, std::vector<NamedValue>* diagnostics) {
  ++steps_taken_;
  if (diagnostics) {  // the weights before the step, to measure what it changed
    size_t total = 0;
    for (const auto& s : states_) total = std::max(total, s.info->offset + s.info->size());
    if (weights_before_.size() != total) weights_before_ = Tensor(backend_, total);
    backend_.copy(weights_, weights_before_.data(), total);
  }
  sampled_ns_residual_ = -1;
  const bool split = split_orthogonal_.size() > 0;
  if (split) backend_.fill(split_orthogonal_.data(), split_orthogonal_.size(), 0.0f);
  for (auto& s : states_)
    if (s.rule == UpdateRule::kAdamW) adamw_update(s, adamw_lr(lr) * s.info->adamw_lr_scale);
  for (const MuonBatch& batch : muon_batches_) {
    muon_orthogonalize(batch);
    if (split) continue;  // applied once every rank's results are in
    for (size_t i : batch.members) {
      ParamState& s = states_[i];
      const float* ortho = muon_orthogonal_.data() + s.batch_offset;
      if (diagnostics && sampled_ns_residual_ < 0)
        sampled_ns_residual_ = newton_schulz_residual(ortho, s.info->rows, s.info->cols);
      muon_apply(s, ortho, lr);
    }
  }
  if (split) {
    communicator_->all_reduce_sum(split_orthogonal_.data(), split_orthogonal_.size());
    for (auto& s : states_) {
      if (s.rule != UpdateRule::kMuon) continue;
      const float* ortho = split_orthogonal_.data() + s.split_offset;
      if (diagnostics && sampled_ns_residual_ < 0)
        sampled_ns_residual_ = newton_schulz_residual(ortho, s.info->rows, s.info->cols);
      muon_apply(s, ortho, lr);
    }
  }
  if (diagnostics) append_diagnostics(lr, *diagnostics);
}

namespace {
// The group a parameter's diagnostics are summed over: its layer, or the embedding, the final
// norm and the head apart.
std::string diagnostics_group(const ParamInfo& p) {
  if (p.role == ParamRole::kEmbedding) return "embedding";
  if (p.role == ParamRole::kHead) return "head";
  if (p.name.rfind("blocks.", 0) == 0) return p.name.substr(0, p.name.find('.', 7));
  return "final_norm";
}
}  // namespace

double Optimizer::newton_schulz_residual(const float* x, int rows, int cols) {
  const int k = std::min(rows, cols);
  if (gram_.size() < size_t(k) * size_t(k)) gram_ = Tensor(backend_, size_t(k) * size_t(k));
  if (rows <= cols)
    backend_.gemm(Transpose::kNo, Transpose::kYes, rows, rows, cols, 1.0f, x, cols, x, cols, 0.0f,
                  gram_.data(), rows);
  else
    backend_.gemm(Transpose::kYes, Transpose::kNo, cols, cols, rows, 1.0f, x, cols, x, cols, 0.0f,
                  gram_.data(), cols);
  std::vector<float> gram(size_t(k) * size_t(k));
  backend_.download(gram.data(), gram_.data(), gram.size());
  double sum = 0;
  for (int i = 0; i < k; ++i)
    for (int j = 0; j < k; ++j) {
      const double d = double(gram[size_t(i) * size_t(k) + size_t(j)]) - (i == j ? 1.0 : 0.0);
      sum += d * d;
    }
  return std::sqrt(sum / k);
}

void Optimizer::append_diagnostics(float lr, std::vector<NamedValue>& out) {
  out.push_back({"opt/lr/adamw", double(adamw_lr(lr))});
  if (config_.name == OptimizerKind::kMuon) out.push_back({"opt/lr/muon", double(lr)});
  // weights_before_ - weights_after: the step's change, negated (squared below).
  backend_.axpy(weights_, weights_before_.data(), weights_before_.size(), -1.0f);
  struct Sums {
    double grad = 0, update = 0, weight = 0;
    size_t n = 0;
  };
  std::vector<std::pair<std::string, Sums>> groups;  // in parameter order: embedding, blocks.0, ...
  double scales = 0;
  int muon = 0;
  for (const auto& s : states_) {
    const ParamInfo& p = *s.info;
    const std::string group = diagnostics_group(p);
    auto it =
        std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == group; });
    if (it == groups.end()) it = groups.insert(groups.end(), {group, {}});
    Sums& g = it->second;
    g.grad += backend_.sum_squares(grads_ + p.offset, p.size());
    g.update += backend_.sum_squares(weights_before_.data() + p.offset, p.size());
    g.weight += backend_.sum_squares(weights_ + p.offset, p.size());
    g.n += p.size();
    if (s.rule == UpdateRule::kMuon) scales += s.last_scale, ++muon;
  }
  for (const auto& [group, g] : groups) {
    out.push_back({"opt/" + group + "/grad_norm", std::sqrt(g.grad)});
    out.push_back({"opt/" + group + "/update_rms", std::sqrt(g.update / double(g.n))});
    out.push_back({"opt/" + group + "/weight_rms", std::sqrt(g.weight / double(g.n))});
  }
  if (muon) out.push_back({"opt/muon/rms_scale", scales / muon});
  if (sampled_ns_residual_ >= 0) out.push_back({"opt/muon/ns_residual", sampled_ns_residual_});
}

float Optimizer::adamw_lr(float scheduled_lr) const {
  // A Muon run's AdamW parameters follow the same schedule, scaled to their own peak lr.
  // adamw_lr <= 0 (a config built in code, not parsed): the same lr.
  if (config_.name != OptimizerKind::kMuon || config_.adamw_lr <= 0 ||
      config_.adamw_lr == config_.lr)
    return scheduled_lr;
  return float(double(scheduled_lr) * config_.adamw_lr / config_.lr);
}

void Optimizer::adamw_update(ParamState& s, float lr) {
  const ParamInfo& p = *s.info;
  const bool decays = p.role == ParamRole::kEmbedding || p.role == ParamRole::kHead ||
                      p.role == ParamRole::kBlockMatrix;
  const double t = double(steps_taken_);
  backend_.adamw_step(weights_ + p.offset, grads_ + p.offset, s.m.data(), s.v.data(), p.size(), lr,
                      float(config_.beta1), float(config_.beta2), float(config_.eps),
                      decays ? float(config_.weight_decay * p.adamw_wd_scale) : 0.0f,
                      float(1.0 - std::pow(config_.beta1, t)),
                      float(1.0 - std::pow(config_.beta2, t)));
}

void Optimizer::muon_orthogonalize(const MuonBatch& batch) {
  const MuonConfig& mc = config_.muon;
  const bool split = split_orthogonal_.size() > 0;
  ns_batch_.clear();
  for (size_t i : batch.members) {
    ParamState& s = states_[i];
    const ParamInfo& p = *s.info;
    float* direction = muon_direction_.data() + s.batch_offset;
    backend_.momentum_step(grads_ + p.offset, s.momentum.data(), direction, p.size(),
                           float(mc.momentum), mc.nesterov);
    float* ortho = split ? split_orthogonal_.data() + s.split_offset
                         : muon_orthogonal_.data() + s.batch_offset;
    if (owns(s)) ns_batch_.push_back({direction, p.rows, p.cols, ortho});
  }
  newton_schulz_.run_batch(ns_batch_, mc.ns_coefficients, mc.ns_steps);
}

void Optimizer::muon_apply(ParamState& s, const float* ortho, float lr) {
  const ParamInfo& p = *s.info;
  const MuonConfig& mc = config_.muon;
  const size_t n = p.size();
  const float* grad = grads_ + p.offset;
  float* weight = weights_ + p.offset;

  double scale = 1.0;
  const double m = p.rows, k = p.cols;
  if (mc.rms_matching == RmsMatching::kMoonlight) {
    scale = 0.2 * std::sqrt(std::max(m, k));
  } else if (mc.rms_matching == RmsMatching::kOriginal) {
    scale = std::sqrt(std::max(1.0, m / k));
  } else if (mc.rms_matching == RmsMatching::kPerLayerDynamic) {
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
  scale *= s.mup_factor;
  s.last_scale = scale;
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
