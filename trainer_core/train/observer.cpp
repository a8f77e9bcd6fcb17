#include "trainer_core/train/observer.h"

#include <cmath>

#include <nlohmann/json.hpp>

namespace trainer_core {

using nlohmann::json;

namespace {
// JSON has no NaN/inf: a diverged loss is written as null.
json number(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json spikes_json(const std::vector<Spike>& spikes) {
  json a = json::array();
  for (const auto& s : spikes)
    a.push_back({{"start_step", s.start_step}, {"peak_step", s.peak_step},
                 {"peak", number(s.peak_value)}, {"recovery_step", s.recovery_step},
                 {"baseline_mean", number(s.baseline_mean)}});
  return a;
}
}  // namespace

json to_json(const StepMetrics& m) {
  return {{"type", "step"},          {"step", m.step},
          {"train_loss", number(m.train_loss)}, {"lr", m.lr},
          {"grad_norm", number(m.grad_norm)},   {"loss_zscore", m.loss_zscore},
          {"grad_norm_zscore", m.grad_norm_zscore}, {"loss_spike", m.loss_spike},
          {"tokens_per_second", m.tokens_per_second}, {"tokens", m.tokens_seen},
          {"elapsed_s", m.elapsed_seconds}, {"replayed", m.replayed},
          {"moe_aux_loss", m.moe_aux_loss}, {"expert_load_max", m.expert_load_max}};
}

json to_json(const EvalMetrics& m) {
  return {{"type", "eval"}, {"step", m.step}, {"val_loss", number(m.val_loss)},
          {"val_ppl", number(m.val_ppl)}, {"tokens", m.tokens_seen},
          {"elapsed_s", m.elapsed_seconds}, {"replayed", m.replayed}};
}

json to_json(const RunSummary& s) {
  json targets = json::array();
  for (const auto& t : s.targets)
    targets.push_back({{"target", t.target}, {"reached", t.reached},
                       {"steps", t.reached ? json(t.steps) : json(nullptr)},
                       {"tokens", t.reached ? json(t.tokens) : json(nullptr)},
                       {"seconds", t.reached ? json(t.seconds) : json(nullptr)},
                       {"flops", t.reached ? json(t.flops) : json(nullptr)}});
  return {{"type", "summary"},
          {"status", s.status},
          {"message", s.message},
          {"steps", s.steps_completed},
          {"diverged_step", s.diverged_step},
          {"final_train_loss", number(s.final_train_loss)},
          {"final_val_loss", number(s.final_val_loss)},
          {"final_val_ppl", number(s.final_val_ppl)},
          {"loss_spike_count", s.loss_spikes.size()},
          {"loss_spikes", spikes_json(s.loss_spikes)},
          {"grad_norm_spike_count", s.grad_norm_spikes.size()},
          {"grad_norm_spikes", spikes_json(s.grad_norm_spikes)},
          {"spike_detector", {{"window", s.spike_window}, {"zscore", s.spike_zscore},
                              {"min_relative", s.spike_min_relative}, {"min_history", s.spike_min_history}}},
          {"targets", targets},
          {"peak_memory_bytes", s.peak_memory_bytes},
          {"tokens_per_second", s.tokens_per_second},
          {"achieved_gflops", s.achieved_gflops},
          {"tokens", s.tokens_seen},
          {"elapsed_s", s.elapsed_seconds},
          {"train_s", s.train_seconds},
          {"num_params", s.num_params},
          {"expert_load", s.expert_load},
          {"inference", {{"tokens_per_second", s.inference_tokens_per_second},
                         {"cache_bytes_per_token", s.cache_bytes_per_token}, {"batch", 1},
                         {"prompt_tokens", s.inference_prompt_tokens},
                         {"generated_tokens", s.inference_generated_tokens}}},
          {"dataset", {{"id", s.dataset_id}, {"source", s.dataset_source}, {"val", s.dataset_val},
                       {"manifest", s.dataset_manifest}, {"train_tokens", s.dataset_train_tokens},
                       {"val_tokens", s.dataset_val_tokens}}},
          {"flops_per_token", {{"train", s.flops.train_per_token},
                               {"inference", s.flops.inference_per_token},
                               {"active_params", s.flops.active_params},
                               {"attention_term", s.flops.attention_term}}}};
}

}  // namespace trainer_core
