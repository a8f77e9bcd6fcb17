// Sweep files: parse, validate, expand into jobs.
//
//   name: muon-vs-adamw
//   base: {...a TrainConfig...}
//   ablations:                 # each is base plus some dotted-path overrides
//     - {label: no_wd, set: {optimizer.muon.decoupled_weight_decay: false}}
//   grid:                      # every combination of these values
//     optimizer.name: [adamw, muon]
//     training.batch_tokens: [1024, 2048]
//   exclude:                   # combinations of grid values not run (each names one value of
//     - {optimizer.name: muon, training.batch_tokens: 2048}   # some axes)
//   seeds: [1, 2, 3]
//   resources: {backend: cpu, gpus: 0}
//   priority: 0                # higher runs first
//   max_concurrency: 0         # jobs of this sweep running at once; 0 = no limit
//   max_attempts: 3            # lost leases / crashes before a job is FAILED
//   targets: [3.0, 2.5]        # target val losses (steps/tokens to target, R_L(B))
//   baseline: baseline         # the label delta columns compare with
//   tune: {...}                # a learning-rate search the coordinator extends: tune_spec.h
//   analysis: {...}            # how the results choose each row's lr: analysis_spec.h
//   budgets: {tokens: [...], via: cooldown}  # each row and seed at several annealed budgets:
//                              # budget_ladder.h
//   forks: [{from: baseline, at_tokens: 16384, label: lr_half, set: {optimizer.lr: 1.5e-3}}]
//                              # planned branches off a row's runs: fork_spec.h
//   health: [{when: {loss_spikes_over: 3}, do: stop}]   # rules judged on each run while it
//                              # trains: health_spec.h
//   reuse: false               # true: a job matching a finished run of any sweep (config,
//                              # lineage, dataset, trainer identity) takes that run's results
//
// Expansion = (baseline + ablations) x (grid less `exclude:`) x seeds; with `tune:`, the grid gains
// the tuned path with tune.start's values (last axis) and the seeds are tune.seeds. Every job gets
// a readable label (ablation and grid values, naming every leaf that tells two values of an axis
// apart; seeds share a label) and a stable config hash. Which runs pair for R_L(B) is decided by
// the analysis from the configs. With `budgets:`, each row and seed expands to one job per budget
// (its label ends in "/tokens=<budget>"), the cooldown rungs forks of the largest
// (budget_ladder.h).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sweep_file/analysis_spec.h"
#include "sweep_file/budget_ladder.h"
#include "sweep_file/fork_spec.h"
#include "sweep_file/health_spec.h"
#include "sweep_file/notify_spec.h"
#include "sweep_file/tune_spec.h"
#include "trainer_core/config/train_config.h"

namespace sweep_file {

struct ExpandedJob {
  int index = 0;
  std::string label;
  std::string ablation;
  int64_t seed = 0;
  std::string optimizer;
  int64_t batch_tokens = 0;
  int64_t max_steps = 0;
  std::string config_hash;
  nlohmann::json config;  // a validated TrainConfig
  JobRole role = JobRole::kGrid;
  int stage = 0;         // a telescoping sweep's stage (the index of its width); else 0
  std::string reason;    // why the planner added it ("extends ... upward"); empty at submit
  std::string plan_key;  // the planner's idempotency key (unique in its sweep); empty at submit
  std::optional<ForkPlan> fork;  // starts from an earlier job's kept checkpoint (a cooldown rung)
};

struct SweepPlan {
  std::string name;
  std::string backend = "cpu";
  int gpus = 0;
  int priority = 0;
  int max_concurrency = 0;
  int max_attempts = 3;
  std::vector<double> targets;
  std::string baseline = "baseline";
  std::optional<TuneSpec> tune;         // present: an adaptive sweep (tune_spec.h)
  AnalysisSpec analysis;                // how the results choose each row's lr (analysis_spec.h)
  std::optional<BudgetLadder> budgets;  // each row and seed at several budgets (budget_ladder.h)
  std::vector<ForkSpec> forks;          // planned branches (fork_spec.h)
  std::vector<HealthRule> health;       // judged on each run while it trains (health_spec.h)
  std::vector<std::string> notify;      // its own webhook URLs (notify_spec.h)
  bool reuse = false;  // jobs may take a matching finished run's results (docs/sweeps.md)
  std::vector<ExpandedJob> jobs;
  std::vector<trainer_core::ConfigProblem> problems;  // empty: valid
};

// The largest expansion a coordinator accepts unless told otherwise (--max-jobs).
constexpr size_t kDefaultMaxJobsPerSweep = 10000;

// Never throws for bad input: every problem is in plan.problems with its path.
SweepPlan plan_sweep(const std::string& text, const std::string& source_name, size_t max_jobs);

// A fork of `parent` (an expanded job of the built-in trainer) from `f.at_tokens` on, with f.set's
// dotted-path overrides, labelled <f.from>/<f.label> and with the parent's seed, ablation and
// role; its ForkPlan's parent_index is the caller's to set. nullopt, with the problems under
// `path` (".at_tokens", ".set.<path>"), when it may not be forked so. Planned forks of a sweep
// file and `sweepctl fork` both come through here.
std::optional<ExpandedJob> fork_of(const ExpandedJob& parent, const ForkSpec& f,
                                   std::set<std::string>& known,
                                   std::vector<trainer_core::ConfigProblem>& problems,
                                   const std::string& path);

// A fork's settings (ForkSpec::set) that scale an expanded job's learning rate by `scale`:
// optimizer.lr, and a Muon run's optimizer.adamw_lr (its AdamW-updated parameters) alike. What a
// health rule's rewind changes (health_spec.h).
nlohmann::json scaled_lr_settings(const nlohmann::json& job_config, double scale);

// Stable 16-hex-digit hash of a JSON value (FNV-1a over its canonical dump).
std::string json_hash(const nlohmann::json& j);
// A job's config hash (ExpandedJob::config_hash): of its config without its name, so runs that
// train alike hash alike.
std::string config_hash(nlohmann::json config);

}  // namespace sweep_file
