#include "server/api/results_proto.h"

#include <cmath>

namespace server {

namespace pb = orchestrator::v1;

namespace {

// Non-finite values never reach the wire: JSON has no NaN, and a NaN mean is "no value" (n = 0).
double finite(double v) { return std::isfinite(v) ? v : 0.0; }

void fill(const Stat& s, pb::Stat* out) {
  out->set_mean(finite(s.mean));
  out->set_std(finite(s.std));
  out->set_n(s.n);
  out->set_of(s.of);
}

void fill(const RunCounts& c, pb::RunCounts* out) {
  out->set_total(c.total);
  out->set_succeeded(c.succeeded);
  out->set_diverged(c.diverged);
  out->set_failed(c.failed);
  out->set_cancelled(c.cancelled);
  out->set_unfinished(c.unfinished);
  out->set_stopped(c.stopped);
}

void fill(const LrChoice& c, pb::LrChoice* out) {
  out->set_decided(c.decided);
  out->set_lr(c.lr);
  out->set_candidates(c.candidates);
  out->set_at_grid_edge(c.at_grid_edge);
  out->set_provisional(c.provisional);
  out->set_tuned(c.tuned);
  out->set_extensions(c.extensions);
  out->set_extensions_exhausted(c.extensions_exhausted);
  out->set_bracketed(c.bracketed);
  out->set_within_noise(c.within_noise);
  out->set_weight_decay(c.weight_decay);
}

pb::RatioKind kind_of(RatioKind k) {
  switch (k) {
    case RatioKind::kEstimate:
      return pb::RATIO_ESTIMATE;
    case RatioKind::kLowerBound:
      return pb::RATIO_LOWER_BOUND;
    case RatioKind::kUpperBound:
      return pb::RATIO_UPPER_BOUND;
    case RatioKind::kMissing:
      return pb::RATIO_MISSING;
  }
  return pb::RATIO_MISSING;
}

pb::SelectionRule selection_of(const RatioPoint& p) {
  if (p.chosen_by_planner) return pb::SELECTION_TUNED;
  switch (p.selection) {
    case sweep_file::SelectionRule::kTokensToTarget:
      return pb::SELECTION_TOKENS_TO_TARGET;
    case sweep_file::SelectionRule::kFinalLoss:
      return pb::SELECTION_FINAL_LOSS;
    case sweep_file::SelectionRule::kHeldOutSeeds:
      return pb::SELECTION_HELD_OUT_SEEDS;
  }
  return pb::SELECTION_RULE_UNSPECIFIED;
}

pb::TargetSource to_proto(TargetSource source) {
  switch (source) {
    case TargetSource::kGiven:
      return pb::TARGETS_GIVEN;
    case TargetSource::kFromData:
      return pb::TARGETS_FROM_DATA;
    case TargetSource::kFromDataFallback:
      return pb::TARGETS_FROM_DATA_FALLBACK;
  }
  return pb::TARGETS_GIVEN;
}

pb::TargetReading to_proto(TargetReading reading) {
  return reading == TargetReading::kAnnealed ? pb::READ_ANNEALED : pb::READ_WITHIN_RUN;
}

void fill(const PairedRatio& r, pb::PairedRatio* out) {
  out->set_kind(kind_of(r.kind));
  out->set_value(finite(r.value));
  out->set_has_interval(r.has_interval);
  out->set_ci_low(finite(r.ci_low));
  out->set_ci_high(finite(r.ci_high));
  out->set_pairs(r.pairs);
  out->set_censored(r.censored);
  out->set_note(r.note);
}

void fill(const TuningReport& t, pb::TuningReport* out) {
  for (const TuningStage& s : t.stages) {
    pb::TuningStage* o = out->add_stages();
    o->set_row(s.row);
    o->set_family(s.family);
    o->set_optimizer(s.optimizer);
    o->set_stage(s.stage);
    o->set_width(s.width);
    for (double v : s.values) o->add_values(v);
    for (double v : s.weight_decays) o->add_weight_decays(v);
    fill(s.choice, o->mutable_choice());
    o->set_tuning_runs(s.tuning_runs);
    o->set_confirmation_runs(s.confirmation_runs);
    o->set_stopped_runs(s.stopped_runs);
    o->set_tuning_flops(s.tuning_flops);
    o->set_run_budget_flops(s.run_budget_flops);
  }
  for (const TelescopeCost& c : t.telescopes) {
    pb::TelescopeCost* o = out->add_telescopes();
    o->set_family(c.family);
    o->set_optimizer(c.optimizer);
    o->set_widths(c.widths);
    o->set_telescoped_flops(c.telescoped_flops);
    o->set_full_grid_values(c.full_grid_values);
    o->set_full_grid_flops(c.full_grid_flops);
  }
  out->set_tuning_flops(t.tuning_flops);
  out->set_confirmation_flops(t.confirmation_flops);
  out->set_stopped_runs(t.stopped_runs);
  out->set_stopped_flops_saved(t.stopped_flops_saved);
}

void fill(const ScalingRow& s, pb::ScalingFit* out) {
  out->set_group(s.group);
  out->set_optimizer(s.optimizer);
  out->set_batch_tokens(s.batch_tokens);
  out->set_lr(s.lr);
  out->set_e(s.fit.E);
  out->set_a(s.fit.A);
  out->set_alpha(s.fit.alpha);
  out->set_has_interval(s.has_interval);
  out->set_e_low(s.E.low);
  out->set_e_high(s.E.high);
  out->set_a_low(s.A.low);
  out->set_a_high(s.A.high);
  out->set_alpha_low(s.alpha.low);
  out->set_alpha_high(s.alpha.high);
  out->set_seeds(s.seeds);
  out->set_points(s.points);
  out->set_alpha_at_bound(s.alpha_at_bound);
  out->set_bootstrap_draws(s.draws);
  out->set_failed_draws(s.failed_draws);
  for (const SeedLadder& ladder : s.observed)
    for (const LossPoint& p : ladder.points) {
      auto* o = out->add_observations();
      o->set_seed(ladder.seed);
      o->set_tokens(int64_t(p.tokens));
      o->set_loss(p.loss);
    }
}

void fill(const MultiplierRow& m, pb::ComputeMultiplier* out) {
  out->set_group(m.group);
  out->set_batch_tokens(m.batch_tokens);
  out->set_seeds(m.seeds);
  for (const MultiplierAt& at : m.at) {
    auto* p = out->add_points();
    p->set_tokens(int64_t(at.tokens));
    p->set_value(at.value);
    p->set_has_interval(m.has_interval);
    if (m.has_interval) {
      p->set_low(at.interval.low);
      p->set_high(at.interval.high);
    }
    p->set_extrapolated(at.extrapolated);
  }
}

pb::ParetoVerdict to_proto(ParetoVerdict v) {
  switch (v) {
    case ParetoVerdict::kMuonDominates:
      return pb::PARETO_MUON_DOMINATES;
    case ParetoVerdict::kNotDominated:
      return pb::PARETO_NOT_DOMINATED;
    case ParetoVerdict::kUndecided:
      return pb::PARETO_UNDECIDED;
  }
  return pb::PARETO_UNDECIDED;
}

void fill(const ParetoFrontier& f, pb::ParetoFrontier* out) {
  out->set_reading(to_proto(f.reading));
  out->set_group(f.group);
  out->set_target(f.target);
  out->set_device_batch_tokens(f.device_batch_tokens);
  out->set_adamw_step_seconds(f.adamw_step_seconds);
  out->set_muon_step_seconds(f.muon_step_seconds);
  for (const ParetoPoint& p : f.points) {
    auto* q = out->add_points();
    q->set_optimizer(p.optimizer);
    q->set_batch_tokens(p.batch_tokens);
    q->set_devices(p.devices);
    q->set_reached(p.reached);
    q->set_seconds(p.seconds);
    q->set_has_interval(p.has_interval);
    q->set_seconds_low(p.seconds_low);
    q->set_seconds_high(p.seconds_high);
    q->set_seeds(p.seeds);
    q->set_on_frontier(p.on_frontier);
    q->set_bounded_above(p.bounded_above);
  }
  out->set_verdict(to_proto(f.verdict));
  out->set_why(f.why);
}

void fill(const LrLaw& law, pb::LrLaw* out) {
  out->set_group(law.group);
  out->set_optimizer(law.optimizer);
  out->set_rows(law.rows);
  out->set_left_out_at_edge(law.left_out_at_edge);
  out->set_fits_width(law.fit.fits_width);
  out->set_width_exponent(law.fit.width_exponent);
  out->set_fits_batch(law.fit.fits_batch);
  out->set_batch_exponent(law.fit.batch_exponent);
  out->set_has_interval(law.fit.has_interval);
  out->set_width_low(law.fit.width_interval.low);
  out->set_width_high(law.fit.width_interval.high);
  out->set_batch_low(law.fit.batch_interval.low);
  out->set_batch_high(law.fit.batch_interval.high);
  out->set_degrees_of_freedom(law.fit.degrees_of_freedom);
}

void fill(const Importance& in, pb::SettingImportance* out) {
  for (const SettingImportance& s : in.settings) {
    auto* setting = out->add_settings();
    setting->set_path(s.path);
    setting->set_share(s.share);
    for (const SettingLevel& l : s.levels) {
      auto* level = setting->add_levels();
      level->set_value(l.value);
      level->set_mean_final_val_loss(l.mean_final_val_loss);
      level->set_runs(l.runs);
    }
  }
  out->set_residual_share(in.residual_share);
  out->set_runs_used(in.runs_used);
  out->set_runs_left_out(in.runs_left_out);
  out->set_balanced(in.balanced);
  out->set_note(in.note);
}

}  // namespace

pb::GetResultsResponse results_to_proto(const SweepResults& r) {
  pb::GetResultsResponse resp;
  for (double t : r.targets) resp.add_targets(t);
  resp.set_target_source(to_proto(r.target_source));
  for (const ScalingRow& row : r.scaling) fill(row, resp.add_scaling_fits());
  for (const MultiplierRow& row : r.multipliers) fill(row, resp.add_multipliers());
  for (const ParetoFrontier& f : r.pareto) fill(f, resp.add_pareto());
  for (const LrLaw& law : r.lr_laws) fill(law, resp.add_lr_laws());

  for (const AblationRow& a : r.ablation) {
    auto* row = resp.add_ablation();
    row->set_label(a.label);
    row->set_baseline(a.baseline);
    row->set_runs(a.runs);
    fill(a.val_ppl, row->mutable_val_ppl());
    fill(a.steps_to_target, row->mutable_steps_to_target());
    fill(a.spikes, row->mutable_spikes());
    fill(a.peak_memory_mb, row->mutable_peak_memory_mb());
    fill(a.final_val_loss, row->mutable_final_val_loss());
    row->set_has_delta(a.has_delta);
    row->set_delta_val_ppl(finite(a.delta_val_ppl));
    row->set_target(r.targets.empty() ? 0 : r.targets[0]);
    fill(a.counts, row->mutable_counts());
    fill(a.lr, row->mutable_lr());
    row->set_optimizer(a.optimizer);
    row->set_batch_tokens(a.batch_tokens);
    row->set_tuning_runs(a.tuning_runs);
    row->set_confirmation_runs(a.confirmation_runs);
  }
  for (const RatioPoint& p : r.ratios) {
    auto* out = resp.add_ratios();
    out->set_reading(to_proto(p.reading));
    out->set_group(p.group);
    out->set_batch_tokens(p.batch_tokens);
    out->set_target(p.target);
    fill(p.ratio, out->mutable_ratio());
    out->set_adamw_lr(p.adamw_lr);
    out->set_muon_lr(p.muon_lr);
    out->set_selection(selection_of(p));
    out->set_adamw_lr_at_edge(p.adamw_lr_at_edge);
    out->set_muon_lr_at_edge(p.muon_lr_at_edge);
    for (const auto& [from, to] : {std::pair{&p.adamw_crossing, out->mutable_adamw_crossing()},
                                   std::pair{&p.muon_crossing, out->mutable_muon_crossing()}}) {
      to->set_reached(from->reached);
      to->set_missed(from->missed);
      to->set_mean_share(from->mean_share);
      to->set_earliest_share(from->earliest_share);
    }
    for (const NeighbourRatio& n : p.neighbours) {
      auto* neighbour = out->add_neighbours();
      neighbour->set_side(n.side);
      neighbour->set_lr(n.lr);
      fill(n.ratio, neighbour->mutable_ratio());
    }
  }
  for (const RatioTrend& t : r.trends) {
    auto* out = resp.add_trends();
    out->set_reading(to_proto(t.reading));
    out->set_group(t.group);
    out->set_target(t.target);
    out->set_batch_sizes(t.batch_sizes);
    out->set_points(t.points);
    out->set_has_slope(t.has_slope);
    out->set_per_doubling(t.per_doubling);
    out->set_low(t.low);
    out->set_high(t.high);
    out->set_degrees_of_freedom(t.degrees_of_freedom);
    out->set_margin(t.margin);
    out->set_does_not_fall(t.does_not_fall);
    out->set_withheld(t.withheld);
  }
  for (const ArchitectureRow& a : r.architecture) {
    auto* row = resp.add_architecture();
    row->set_label(a.label);
    row->set_attention(a.attention);
    row->set_ffn(a.ffn);
    row->set_optimizer(a.optimizer);
    row->set_runs(a.runs);
    fill(a.lr, row->mutable_lr());
    fill(a.counts, row->mutable_counts());
    fill(a.seconds_to_target, row->mutable_seconds_to_target());
    fill(a.inference_tokens_per_second, row->mutable_inference_tokens_per_second());
    fill(a.peak_memory_mb, row->mutable_peak_memory_mb());
    fill(a.val_ppl, row->mutable_val_ppl());
    fill(a.flops_to_target, row->mutable_flops_to_target());
    fill(a.tokens_to_target, row->mutable_tokens_to_target());
    if (a.has_relative_flops) fill(a.relative_flops, row->mutable_relative_flops());
  }
  for (const LrPoint& p : r.lr_sensitivity) {
    auto* out = resp.add_lr_sensitivity();
    out->set_row(p.row);
    out->set_optimizer(p.optimizer);
    out->set_batch_tokens(p.batch_tokens);
    out->set_lr(p.lr);
    fill(p.final_val_loss, out->mutable_final_val_loss());
    fill(p.counts, out->mutable_counts());
    out->set_selected(p.selected);
    out->set_weight_decay(p.weight_decay);
  }
  for (const std::string& n : r.notes) resp.add_notes(n);
  if (r.tuning) fill(*r.tuning, resp.mutable_tuning());
  if (r.importance) fill(*r.importance, resp.mutable_importance());
  return resp;
}

}  // namespace server
