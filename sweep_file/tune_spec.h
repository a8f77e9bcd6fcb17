// The `tune:` section of a sweep file: a learning-rate search the coordinator extends by itself.
//
//   tune:
//     param: optimizer.lr        # the tuned value; optimizer.lr is the one supported today
//     start: [1e-3, 2e-3, 4e-3]  # the values every row runs first (at least 2, all > 0), or
//                                #   per optimizer: {adamw: [1e-3, 2e-3], muon: [4e-3, 8e-3]}
//                                #   (every optimizer the sweep runs needs its list)
//     factor: 2                  # spacing of an extension: the next value beyond an edge is
//                                #   edge * factor (up) or edge / factor (down); > 1, default 2
//     max_extensions: 3          # extensions per row, both sides together (0..20, default 3)
//     seeds: [1]                 # seeds of the tuning runs (default: [1])
//     confirm_seeds: [1, 2, 3]   # seeds run at the chosen value once it is bracketed (default:
//                                #   the tuning seeds, i.e. no confirmation runs)
//     early_stop:                # optional: successive halving of tuning runs (never of
//                                #   confirmation runs, so never of what R_L(B) reads)
//       rungs: [0.25, 0.5]       #   fractions of a run's token budget, increasing, in (0, 1)
//       stop_fraction: 0.5       #   at a rung, the worst this fraction of the row's runs that
//                                #   have reached it stop (rounded down; default 0.5)
//       min_runs: 3              #   no decision before this many runs of the row reached the
//                                #   rung (default 3)
//     weight_decay:              # optional: tune optimizer.weight_decay together with the lr
//       start: [0.025, 0.1, 0.4] #   the values every row runs first (at least 2, all > 0); stage
//                                #   0 runs every (lr, weight decay) pair of the two lists
//       factor: 4                #   spacing of a weight-decay extension (> 1, default 2)
//     telescope:                 # optional: the paper's hyperparameter transfer across widths
//       widths: [64, 128, 256]   #   model.hidden of each stage (increasing; n_head and ffn_hidden
//                                #   keep the base config's head size and ratio)
//       shrink: 2                #   stage k's grid spans 1/shrink^k of stage 0's (in log lr and
//                                #   log weight decay), at least one step each side
//                                #   (stage_points); >= 1, default 2
//       refine: 1                #   stage k's step is factor^(1/refine^k): the grid gets finer
//                                #   as well as narrower (1..4 and <= shrink; default 1: the
//                                #   step stays)
//
// Telescoping: stage 0 tunes every row at widths[0] from `start`. Once a row's stage k is chosen
// (bracketed, or out of extensions), its stage k+1 runs at widths[k+1] on a grid centred on that
// choice (stage_points), and is bracketed the same way. Confirmation seeds run at the last width
// only. With model.parametrization: mup the stages share mup_base_hidden = widths[0], so that
// AdamW's optimum lr can transfer (docs/science.md).
//
// Two tuned values (tune.weight_decay): a row's cells are points (lr, weight decay). Stage 0 runs
// the product of the start lists; later stages a plus-shaped grid around the previous choice
// (stage_points). Bracketing, edges and extensions then go along each axis: the best point's
// neighbours are the nearest tried lr below and above at its weight decay, and the nearest weight
// decay below and above at its lr (server/results/rows.h, axis_neighbours).
//
// A row is everything the sweep varies but the tuned values (ablation, optimizer, batch size,
// architecture, ...). Once every tuning run of a row has finished, the coordinator picks the
// row's best value by the selection rule of docs/statistics.md over the tuning runs only. If the
// best is the smallest or largest value tried, it adds the next value beyond that edge (one run
// per tuning seed), until the best is interior or max_extensions is used up (the results then
// say so). Then it adds the confirmation seeds at the chosen value (server/tuning/planner.h).
// A tuned sweep names its seeds here only: a top-level `seeds:` is refused.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "trainer_core/config/json_reader.h"
#include "trainer_core/config/train_config.h"

namespace sweep_file {

// Why a job exists: the fixed expansion of a sweep without `tune:`, a tuning run at a start value
// of its stage, a tuning run at a value beyond them (an extension), a confirmation seed at a
// row's chosen value, or a completion: a neighbour of the best that early stopping ended, run
// again to its end (never stopped early) so that it can bracket. Tuning, extension and
// completion runs choose the lr; confirmation runs measure it.
// kRewind: a fork a health rule made of a run, from before its trouble, at a lower lr
// (health_spec.h); no cell's lr describes it, so the results leave it out (rows.h).
enum class JobRole { kGrid, kTuning, kExtension, kConfirmation, kCompletion, kRewind };
// grid | tuning | extension | confirmation | completion | rewind (the stored text)
const char* job_role_name(JobRole role);
std::optional<JobRole> parse_job_role(std::string_view name);

struct Telescope {
  std::vector<int> widths;  // model.hidden per stage, increasing, at least 2
  double shrink = 2;
  double refine = 1;  // stage k's step: factor^(1/refine^k), on each tuned axis
  // The tuning seeds of the last two widths (at least 2: a transfer claim rests on them);
  // the earlier widths use tune.seeds.
  std::vector<int64_t> final_seeds;
};

struct EarlyStop {
  std::vector<double> rungs;
  double stop_fraction = 0.5;
  int min_runs = 3;
};

// Bracketing that respects seed noise (docs/statistics.md, "Bracketing"): a neighbour of a row's
// best lr brackets it only when its mean final val loss is worse by more than
// 2 · σ · sqrt(1/n_best + 1/n_neighbour), σ the larger of `sd` and the row's pooled seed SD.
// Until then the planner runs the next of `seeds` at the best and at each neighbour within that
// margin; once they are spent the choice stands, marked "within noise: not bracketed".
struct NoiseRule {
  double sd = 0;                   // nats: the seed-to-seed SD of final val loss expected
  std::vector<int64_t> seeds;      // extra tuning seeds, in the order they are added
  static constexpr double kZ = 2;  // one-sided, about 97.7% under a normal model
};

// The second tuned value, optimizer.weight_decay (absent: only the lr is tuned).
struct WeightDecayAxis {
  std::vector<double> start;  // at least 2, > 0, increasing
  double factor = 2;
};

// A point of a tuned row's search: its lr and, when tune.weight_decay is set, its weight decay
// (else 0: the config's own weight decay is not a coordinate).
struct TunePoint {
  double lr = 0;
  double wd = 0;
};

// The tuned axes: every search moves along the lr, and along the weight decay when it is tuned.
enum class TuneAxis { kLr, kWeightDecay };

struct TuneSpec {
  std::string param = "optimizer.lr";
  std::vector<double> start;                                      // every row's, or
  std::map<std::string, std::vector<double>> start_by_optimizer;  // each optimizer's
  double factor = 2;
  int max_extensions = 3;
  std::vector<int64_t> seeds = {1};
  std::vector<int64_t> confirm_seeds;  // after validation: never empty (defaults to seeds)
  std::optional<Telescope> telescope;
  std::optional<EarlyStop> early_stop;
  std::optional<NoiseRule> noise;
  std::optional<WeightDecayAxis> weight_decay;
  int stages() const { return telescope ? int(telescope->widths.size()) : 1; }
  // The tuning seeds of stage `stage`: telescope.final_seeds at the last two widths of a
  // telescope, else `seeds`.
  const std::vector<int64_t>& seeds_at(int stage) const {
    return telescope && stage >= stages() - 2 ? telescope->final_seeds : seeds;
  }

  // The start values of a row of `optimizer` (empty when the spec has none for it).
  const std::vector<double>& start_for(const std::string& optimizer) const;
  // Every start value of every optimizer, increasing, each once.
  std::vector<double> all_start_values() const;
};

// Reads and validates doc["tune"] (problems under "tune."); nullopt when absent or invalid.
std::optional<TuneSpec> read_tune_spec(const nlohmann::json& doc,
                                       std::vector<trainer_core::ConfigProblem>& problems);

// A list of seeds under `key`: non-negative integers, each once; problems name `path`[i].
std::vector<int64_t> read_seeds(trainer_core::JsonReader& r, const char* key,
                                const std::string& path,
                                std::vector<trainer_core::ConfigProblem>& problems);

// The stored form (the sweeps table keeps it beside the file, so that planning never re-parses
// the file); from_json throws std::invalid_argument on a value it did not write.
nlohmann::json to_json(const TuneSpec& spec);
TuneSpec tune_spec_from_json(const nlohmann::json& j);

// The spacing of stage `stage` along `axis`: factor^(1/refine^stage) (tune.factor for the lr,
// tune.weight_decay.factor for the weight decay). Extensions of that stage take this step.
double axis_step(const TuneSpec& spec, TuneAxis axis, int stage);

// The points a row of `optimizer` starts stage `stage` with. Stage 0: tune.start (and with
// tune.weight_decay, every pair of tune.start and weight_decay.start). Stage k > 0, centred on the
// previous stage's choice: along each axis a steps of axis_step(k) with |a| <= h_k, where
// h_k = max(1, round(h0 * (refine / shrink)^k)) and h0 is half stage 0's span in its steps (at
// least 1): the span shrinks by `shrink` per stage while the step shrinks by `refine` (refine <=
// shrink, so a stage never has more points than stage 0's span). With two axes the grid is a
// cross: the centre's lr line and its weight-decay line, which is what axis-wise bracketing
// reads (a point off both lines brackets nothing). 1-D, start [1e-3 .. 1.6e-2] (h0 = 2), shrink 2,
// refine 1: stages 1 and 2 have 3 values each, a factor 2 apart. full_span: stage 0's span and
// step around the centre (the stage before ended at an edge: its choice is no narrow centre).
// Points are rounded (rounded_value) and ordered by (lr, wd).
// `first_lrs`: the row's stage 0 lrs (TuneSpec::start_for its optimizer).
std::vector<TunePoint> stage_points(const TuneSpec& spec, const std::vector<double>& first_lrs,
                                    int stage, TunePoint centre, bool full_span = false);

// A resolved config at the tuned point, resolved as a submitted one would be: an AdamW run's
// optimizer.adamw_lr is its lr; a Muon run's keeps the preset's (train_config.cpp). The weight
// decay is set only when the spec tunes it.
nlohmann::json with_point(nlohmann::json config, const TuneSpec& spec, TunePoint point);

// The most jobs the planner can give one row: every stage's values and extensions on every tuning
// seed, and the confirmation seeds.
size_t max_tuned_jobs_per_row(const TuneSpec& spec);

// A resolved TrainConfig at model width `width`: model.hidden = width, n_head keeping the head
// size of `config`, ffn_hidden keeping its ratio to hidden; a muP config whose mup_base_hidden is
// unset gets `base_width`. Throws std::invalid_argument when the width does not divide into heads.
nlohmann::json at_width(nlohmann::json config, int width, int base_width);

// A tuned value as jobs carry it: rounded to 6 significant digits, so that 1e-3 * 2 * 2 * 2 is
// 0.008 in labels, configs and the planner's keys alike.
double rounded_value(double v);
// Whether two tuned values are the same grid point (relative difference below 1e-6).
bool same_value(double a, double b);
// Whether two points are the same grid point: the same lr and the same weight decay.
bool same_point(TunePoint a, TunePoint b);

}  // namespace sweep_file
