// Per-sweep results computed from stored rows: the ablation table (the paper's Table 2 layout)
// and the token consumption ratio R_L(B) = T_L^AdamW(B) / T_L^Muon(B) (Essential AI).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "store.h"

namespace server {

struct Stat {
  double mean = 0, std = 0;  // std: sample standard deviation over seeds (0 for one seed)
  int n = 0;
};

struct AblationRow {
  std::string label;
  bool baseline = false;
  int runs = 0;
  Stat val_ppl, steps_to_target, spikes, peak_memory_mb;
  bool has_delta = false;
  double delta_val_ppl = 0;
};

// Table 3: one row per (attention, feed-forward, optimizer), when the sweep varies architecture.
struct ArchitectureRow {
  std::string attention, ffn, optimizer;
  int runs = 0;
  Stat seconds_to_target, inference_tokens_per_second, peak_memory_mb, val_ppl, flops_to_target;
  bool has_relative_flops = false;
  double relative_flops_to_target = 0;  // mean FLOPs to target / that of MHA + dense + AdamW
};

struct RatioPoint {
  std::string group;  // the label without its optimizer and batch-size parts
  int64_t batch_tokens = 0;
  double target = 0;
  double mean = 0, ci_low = 0, ci_high = 0;
  int pairs = 0;
};

struct SweepResults {
  std::vector<double> targets;
  std::vector<AblationRow> ablation;
  std::vector<RatioPoint> ratios;
  std::vector<ArchitectureRow> architecture;  // empty unless the sweep varies architecture
};

// Uses SUCCEEDED runs with a summary; runs counts every job of the label.
SweepResults analyze_sweep(const SweepRow& sweep, const std::vector<JobRow>& jobs,
                           const std::map<int64_t, std::string>& summaries);

// Mean and percentile bootstrap 95% interval of the mean (2,000 resamples, fixed seed, so the
// figures are reproducible).
void bootstrap_mean_ci(const std::vector<double>& values, double& mean, double& low, double& high);

}  // namespace server
