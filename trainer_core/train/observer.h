// How a run reports: the library never prints; the trainer command, the worker and the tests
// plug an observer in.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "trainer_core/metrics/flops.h"
#include "trainer_core/metrics/named_value.h"
#include "trainer_core/metrics/spike_detector.h"
#include "trainer_core/metrics/target_tracker.h"
#include "trainer_core/train/exit_codes.h"

namespace trainer_core {

struct RunInfo {
  std::string name;
  size_t num_params = 0;
  int64_t max_steps = 0;
  int64_t start_step = 0;  // > 0 when resumed from a checkpoint
  int64_t batch_tokens = 0;
  int accumulation_steps = 1;
  size_t train_tokens = 0;
  size_t val_tokens = 0;
  FlopsBreakdown flops;
};

// A step record's fields; their names, units and which the coordinator keeps: record_fields.h.
struct StepMetrics {
  int64_t step = 0;  // optimizer steps completed, 1-based
  double train_loss = 0;
  double lr = 0;
  double grad_norm = 0;  // before clipping
  double loss_zscore = 0;
  double grad_norm_zscore = 0;
  bool loss_spike = false;
  double tokens_per_second = 0;  // of this step
  int64_t tokens = 0;            // trained so far
  double elapsed_s = 0;          // wall-clock since the run started
  // A resumed run first replays the steps and evals its checkpoint holds, so that a consumer
  // (the worker, a JSON-lines file) always sees the whole curve, whoever computed the first part.
  bool replayed = false;
  std::vector<NamedValue> metrics;
};

struct EvalMetrics {
  int64_t step = 0;
  double val_loss = 0;
  double val_ppl = 0;
  int64_t tokens = 0;
  // Wall-clock since the run started, evaluations and checkpoints included. NaN on a replayed
  // eval: a checkpoint keeps only its training time.
  double elapsed_s = 0;
  // Training time up to this eval, evaluations and checkpoints excluded: the clock time to
  // target counts (target_tracker.h). NaN in records of trainers from before it was recorded.
  double train_s = std::numeric_limits<double>::quiet_NaN();
  bool replayed = false;
};

struct RunSummary {
  RunOutcome outcome = RunOutcome::kSucceeded;
  std::string message;
  int64_t steps_completed = 0;
  int64_t diverged_step = -1;
  // > 0: nothing was trained; the coordinator's finished job of that id, with the same config,
  // data and trainer, stands in for this run (train/reuse.h). The coordinator stores that job's
  // summary in this one's place, with this field set.
  int64_t reused_from_job = 0;
  double final_train_loss = 0;
  double final_val_loss = 0;
  double final_val_ppl = 0;
  std::vector<Spike> loss_spikes;
  std::vector<Spike> grad_norm_spikes;
  int spike_window = 0;
  double spike_zscore = 0;
  double spike_min_relative = 0;
  int spike_min_history = 0;
  std::vector<TargetCrossing> targets;
  size_t peak_memory_bytes = 0;
  double tokens_per_second = 0;  // mean over training steps (evals excluded)
  double achieved_gflops = 0;    // tokens_per_second · train FLOPs per token (the model's, as MFU
                                 // counts: the optimizer's are not in it)
  int64_t tokens_seen = 0;
  double elapsed_seconds = 0;  // wall time, evaluations and inference benchmark included
  double train_seconds = 0;    // training steps only (what time-to-target counts)
  size_t num_params = 0;
  FlopsBreakdown flops;
  std::vector<double> expert_load;  // MoE: mean share of routed slots per expert over the run
  // Greedy generation with the KV cache after training (batch 1, prompt from the validation split).
  double inference_tokens_per_second = 0;
  double cache_bytes_per_token = 0;
  int inference_prompt_tokens = 0;
  int inference_generated_tokens = 0;
  // The data (token_dataset.h): compared by the results before any two runs are paired.
  std::string dataset_id, dataset_source, dataset_val, dataset_manifest;
  int64_t dataset_train_tokens = 0, dataset_val_tokens = 0;
  // The trainer that ran it (util/trainer_identity.h); empty in records from before it was kept.
  std::string trainer_commit, trainer_binary_sha256;
  bool trainer_dirty = false;
};

class TrainObserver {
 public:
  virtual ~TrainObserver() = default;
  virtual void on_start(const RunInfo&) {}
  virtual void on_step(const StepMetrics&) {}
  virtual void on_eval(const EvalMetrics&) {}
  virtual void on_checkpoint(int64_t /*step*/, const std::string& /*path*/) {}
  virtual void on_finish(const RunSummary&) {}
};

}  // namespace trainer_core
