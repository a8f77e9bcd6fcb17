#include "server/tuning/planner.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>

#include "server/results/bracketing.h"
#include "server/results/rows.h"
#include "server/tuning/early_stop.h"
#include "sweep_file/sweep_spec.h"

namespace server {

using nlohmann::json;
using sweep_file::JobRole;

namespace {

using sweep_file::TuneAxis;
using sweep_file::TunePoint;

// "0.004": the value as labels, reasons and keys write it (sweep_spec's labels print numbers so).
std::string text_of(double lr) { return json(lr).dump(); }

// A point as reasons write it: "0.004", or "lr 0.004, weight decay 0.1" when both are tuned.
std::string text_of(const sweep_file::TuneSpec& tune, TunePoint p) {
  return tune.weight_decay ? "lr " + text_of(p.lr) + ", weight decay " + text_of(p.wd)
                           : text_of(p.lr);
}

// "/lr=0.004" (then "/weight_decay=0.1" when it is tuned): the label parts expansion gives a
// tuned point (sweep_spec.cpp, add_tuned_axis), and the planner's keys.
std::string label_part(const sweep_file::TuneSpec& tune, TunePoint p) {
  return "/lr=" + text_of(p.lr) + (tune.weight_decay ? "/weight_decay=" + text_of(p.wd) : "");
}

// A job like `like` (a job of the row it extends, or of the stage before) at `point` for `seed`.
// `base_label` is its row's label without the tuned parts; `key` names the planner's decision.
sweep_file::ExpandedJob job_at(const sweep_file::TuneSpec& tune, const std::string& base_label,
                               const JobRow& like, json config, TunePoint point, int64_t seed,
                               JobRole role, int stage, const std::string& key,
                               std::string reason) {
  sweep_file::ExpandedJob e;
  e.label = base_label + label_part(tune, point);
  e.ablation = like.ablation;
  e.seed = seed;
  e.optimizer = like.optimizer;
  e.batch_tokens = like.batch_tokens;
  e.max_steps = like.max_steps;
  e.config = sweep_file::with_point(std::move(config), tune, point);
  e.config["seed"] = seed;
  e.config["name"] = e.label + "/seed=" + std::to_string(seed);
  e.config_hash = sweep_file::config_hash(e.config);
  e.role = role;
  e.stage = stage;
  e.reason = std::move(reason);
  // Unique per (row, stage, value, seed, role): a second planning of it adds nothing.
  e.plan_key = key + "/stage=" + std::to_string(stage) + label_part(tune, point) +
               "/seed=" + std::to_string(seed) + "/" + sweep_file::job_role_name(role);
  return e;
}

enum class RowStep { kWaiting, kPlanned, kDone };

TunePoint choice_point(const LrChoice& c) { return {c.lr, c.weight_decay}; }

// Stage k+1 of a telescoping row whose stage k chose `row.choice`: its start grid at the next
// width, centred on that choice (sweep_file::stage_points).
void plan_next_stage(const Row& row, const JobRow& like, const sweep_file::TuneSpec& tune,
                     std::vector<sweep_file::ExpandedJob>& add) {
  const int next = row.stage + 1;
  const std::vector<int>& widths = tune.telescope->widths;
  const json config = sweep_file::at_width(json::parse(like.config), widths[next], widths[0]);
  const std::string label =
      label_without(row.base_label, {"width="}) + "/width=" + std::to_string(widths[next]);
  // A stage that ended at an edge (its extensions spent) has found no optimum: the next one
  // searches stage 0's whole span around it, and says so, instead of a narrow grid.
  const bool at_edge = row.choice.at_grid_edge;
  const TunePoint choice = choice_point(row.choice);
  const std::string why = "stage " + std::to_string(next + 1) + " (width " +
                          std::to_string(widths[next]) + ") of row " + row.base_label +
                          ": centred on stage " + std::to_string(next) + "'s choice " +
                          text_of(tune, choice) +
                          (at_edge ? ", which is at an edge after its extensions (not bracketed): "
                                     "stage 1's whole span again"
                                   : "");
  for (TunePoint point :
       sweep_file::stage_points(tune, tune.start_for(row.optimizer), next, choice, at_edge))
    for (int64_t seed : tune.seeds_at(next))
      add.push_back(
          job_at(tune, label, like, config, point, seed, JobRole::kTuning, next, row.key, why));
}

// An interior best that is not bracketed yet (bracketing.h): its stopped neighbours run again
// to their end, then tune.noise.seeds are added where a neighbour is within the noise. Returns
// whether it added a job.
bool plan_bracketing(const Row& row, const JobRow& like, const sweep_file::TuneSpec& tune,
                     std::vector<sweep_file::ExpandedJob>& add) {
  const BracketCheck check = check_bracket(row, tune.noise);
  if (check.bracketed()) return false;
  const size_t before = add.size();
  for (const NeighbourCheck& n : check.neighbours) {
    if (!n.stopped) continue;
    const Cell& cell = row.cells[n.cell];
    std::set<int64_t> stopped, other;
    for (const Run* r : cell.runs)
      if (r->selects) (r->job->state == JobState::kStopped ? stopped : other).insert(r->job->seed);
    for (int64_t seed : stopped)
      if (!other.count(seed))
        add.push_back(job_at(tune, row.base_label, like, json::parse(like.config), cell.point(),
                             seed, JobRole::kCompletion, row.stage, row.key,
                             "completes row " + row.base_label + "'s neighbour " +
                                 text_of(tune, cell.point()) + " of its best " +
                                 text_of(tune, row.best().point()) +
                                 ": early stopping ended it, and a stopped run does not bracket"));
  }
  if (add.size() > before || !tune.noise) return add.size() > before;
  const auto step = next_noise_seed(row, check, *tune.noise);
  if (!step) return false;
  char margin[96];
  for (const NeighbourCheck& n : check.neighbours)
    if (!n.separated) {
      std::snprintf(margin, sizeof margin, "%.4f within the margin %.4f", n.gap, n.margin);
      break;
    }
  for (size_t cell : step->cells)
    add.push_back(job_at(tune, row.base_label, like, json::parse(like.config),
                         row.cells[cell].point(), step->seed, JobRole::kTuning, row.stage, row.key,
                         "adds seed " + std::to_string(step->seed) + " to row " + row.base_label +
                             ": a neighbour of its best " + text_of(tune, row.best().point()) +
                             " is worse by " + margin + " (tune.noise)"));
  return true;
}

RowStep plan_row(const Row& row, const sweep_file::TuneSpec& tune,
                 const std::set<std::pair<std::string, int>>& stages_present,
                 std::vector<sweep_file::ExpandedJob>& add) {
  const JobRow* like = nullptr;
  for (const Cell& cell : row.cells)
    for (const Run* r : cell.runs) {
      if (!like) like = r->job;
      if (r->job->state == JobState::kCancelled) return RowStep::kDone;  // someone stopped it
    }
  // Provisional: a tuning run of the row has not finished (rows.h, select_lr).
  if (!like || row.choice.provisional) return RowStep::kWaiting;

  const LrChoice& choice = row.choice;
  const int extensions_left = tune.max_extensions - choice.extensions;
  // Extensions: one point beyond each open side of the best (one side in one dimension), as many
  // as are left, each run on every tuning seed of the stage.
  std::vector<std::pair<TunePoint, std::string>> next;
  if (!choice.decided) {  // no tuning run succeeded
    const Cell& lowest = row.cells.front();
    if (lowest.selecting.diverged == 0 || extensions_left <= 0) return RowStep::kDone;
    next.push_back({{lowest.lr / sweep_file::axis_step(tune, TuneAxis::kLr, row.stage), lowest.wd},
                    "extends row " + row.base_label +
                        " downward: every tuning run diverged or failed, the smallest lr " +
                        text_of(lowest.lr) + " diverged"});
  } else if (choice.at_grid_edge) {
    const Cell& best = row.best();
    for (const AxisNeighbour& side : axis_neighbours(row, row.selected)) {
      if (side.cell || int(next.size()) >= extensions_left) continue;
      const double step = sweep_file::axis_step(tune, side.axis, row.stage);
      const double by = side.up ? step : 1 / step;
      const bool lr = side.axis == TuneAxis::kLr;
      const TunePoint p = lr ? TunePoint{best.lr * by, best.wd} : TunePoint{best.lr, best.wd * by};
      const std::string where =
          lr ? (side.up ? " upward" : " downward")
             : (side.up ? " to a larger weight decay" : " to a smaller weight decay");
      next.push_back({p, "extends row " + row.base_label + where + ": best at edge " +
                             text_of(tune, choice_point(choice))});
    }
  }
  if (!next.empty()) {
    for (auto& [point, why] : next) {
      point = {sweep_file::rounded_value(point.lr), sweep_file::rounded_value(point.wd)};
      for (int64_t seed : tune.seeds_at(row.stage))
        add.push_back(job_at(tune, row.base_label, *like, json::parse(like->config), point, seed,
                             JobRole::kExtension, row.stage, row.key, why));
    }
    return RowStep::kPlanned;
  }

  if (choice.decided && !choice.at_grid_edge && plan_bracketing(row, *like, tune, add))
    return RowStep::kPlanned;

  // Chosen: interior, or at an edge with no extension left. Before the last width of a
  // telescoping sweep, the next stage starts from it; at the last, the confirmation seeds run.
  if (row.stage + 1 < tune.stages()) {
    if (stages_present.count({row.family_key, row.stage + 1})) return RowStep::kDone;
    plan_next_stage(row, *like, tune, add);
    return RowStep::kPlanned;
  }
  std::set<int64_t> have;
  for (const Run* r : row.best().runs) have.insert(r->job->seed);
  const std::string verdict =
      choice.at_grid_edge ? "at edge after " + std::to_string(choice.extensions) +
                                " extension(s), the most tune.max_extensions allows: not bracketed"
      : choice.within_noise ? "a neighbour within the seed noise after every tune.noise seed: "
                              "not bracketed"
                            : "bracketed";
  const size_t before = add.size();
  for (int64_t seed : tune.confirm_seeds)
    if (!have.count(seed))
      add.push_back(job_at(tune, row.base_label, *like, json::parse(like->config),
                           choice_point(choice), seed, JobRole::kConfirmation, row.stage, row.key,
                           "confirms row " + row.base_label + " at " +
                               (tune.weight_decay ? "" : "lr ") +
                               text_of(tune, choice_point(choice)) + " (" + verdict + ")"));
  return add.size() > before ? RowStep::kPlanned : RowStep::kDone;
}

}  // namespace

TuningDecision plan_tuning(const SweepRow& sweep, const std::vector<JobRow>& jobs,
                           const std::map<int64_t, std::string>& summaries) {
  TuningDecision decision;
  if (!sweep.tune) return decision;
  Grouping g;
  group_into_rows(jobs, summaries, sweep.tune, g);
  std::set<std::pair<std::string, int>> stages_present;  // (family, stage) that have jobs
  for (const Row& row : g.rows) stages_present.insert({row.family_key, row.stage});
  bool all_done = true;
  for (const Row& row : g.rows)
    all_done =
        plan_row(row, *sweep.tune, stages_present, decision.add) == RowStep::kDone && all_done;
  decision.done = all_done;
  return decision;
}

int TuningPlanner::plan(int64_t sweep_id, int64_t now_ms) {
  trainer_core::MutexLock lock(mu_);
  try {
    return plan_locked(sweep_id, now_ms);
  } catch (...) {
    needs_retry_ = true;
    throw;
  }
}

int TuningPlanner::plan_locked(int64_t sweep_id, int64_t now_ms) {
  const std::optional<SweepRow> sweep = sweeps_.sweep(sweep_id);
  if (!sweep || !sweep->tune || !sweep->planning_open) return 0;
  const std::vector<JobRow> jobs = sweeps_.jobs(sweep_id);
  const TuningDecision d = plan_tuning(*sweep, jobs, metrics_.summaries(sweep_id));
  const int added = d.add.empty() ? 0 : sweeps_.add_planned_jobs(sweep_id, d.add, now_ms);
  if (d.done) sweeps_.close_planning(sweep_id);
  return added;
}

bool TuningPlanner::consider_stopping(int64_t job_id, const std::vector<int64_t>& eval_steps,
                                      int64_t now_ms) {
  const std::optional<JobRow> job = sweeps_.job(job_id);
  if (!job || job->role == JobRole::kConfirmation || job->role == JobRole::kGrid ||
      job->role == JobRole::kCompletion)
    return false;
  const std::optional<SweepRow> sweep = sweeps_.sweep(job->sweep_id);
  if (!sweep || !sweep->tune || !sweep->tune->early_stop) return false;
  const std::vector<JobRow> jobs = sweeps_.jobs(job->sweep_id);
  Grouping g;
  group_into_rows(jobs, {}, sweep->tune, g);  // rows and runs; no selection needed
  const Row* row = row_of(g, job_id);
  if (row == nullptr) return false;
  const Run& run = *std::find_if(g.runs.begin(), g.runs.end(),
                                 [&](const Run& r) { return r.job->id == job_id; });
  RowEvals evals;
  for (const Cell& cell : row->cells)
    for (const Run* r : cell.runs)
      if (r->selects) evals[r->job->id] = metrics_.eval_points(r->job->id);
  bool stops_reporter = false;
  for (const StopDecision& d : early_stop_decisions(*sweep->tune, *row, run, evals, eval_steps)) {
    const bool asked = sweeps_.request_stop(d.job_id, d.reason, now_ms);
    stops_reporter = stops_reporter || (asked && d.job_id == job_id);
  }
  return stops_reporter;
}

int TuningPlanner::plan_open_sweeps(int64_t now_ms) {
  needs_retry_ = false;  // set again by a planning that throws
  int added = 0;
  for (int64_t id : sweeps_.sweeps_planning_open()) added += plan(id, now_ms);
  return added;
}

}  // namespace server
