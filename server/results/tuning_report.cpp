#include "server/results/tuning_report.h"

#include <map>
#include <set>

namespace server {

namespace {

// A row's training FLOPs model (every run of a row has the same model and optimizer): from any
// run of it with a summary (zero: none has one yet).
trainer_core::FlopsBreakdown flops_of(const Row& row) {
  for (const Cell& cell : row.cells)
    for (const Run* r : cell.runs)
      if (r->summary && r->summary->flops.train_per_token > 0) return r->summary->flops;
  return {};
}

// What a run trained, in FLOPs: its summary's tokens and steps, or the steps its job reached.
double run_flops(const Run& r, const trainer_core::FlopsBreakdown& flops) {
  if (r.summary)
    return flops.training(double(r.summary->tokens_seen), double(r.summary->steps_completed));
  return flops.training(double(r.job->step) * double(r.job->batch_tokens), double(r.job->step));
}

}  // namespace

TuningReport tuning_report(const Grouping& g) {
  TuningReport report;
  std::map<std::string, std::vector<const TuningStage*>> families;
  report.stages.reserve(g.rows.size());
  for (const Row& row : g.rows) {
    TuningStage s;
    s.row = row.label;
    s.family = label_without(row.label, {"width="});
    s.optimizer = row.optimizer;
    s.stage = row.stage;
    s.width = row.width;
    s.choice = row.choice;
    const trainer_core::FlopsBreakdown flops_model = flops_of(row);
    if (!row.cells.empty() && !row.cells.front().runs.empty()) {
      const JobRow& job = *row.cells.front().runs.front()->job;
      s.run_budget_flops = flops_model.training(double(job.max_steps) * double(job.batch_tokens),
                                                double(job.max_steps));
    }
    for (const Cell& cell : row.cells) {
      bool tried = false;
      for (const Run* r : cell.runs) {
        const double flops = run_flops(*r, flops_model);
        const bool stopped = r->job->state == JobState::kStopped;
        if (r->selects) {
          tried = true;
          ++s.tuning_runs;
          s.tuning_flops += flops;
          report.tuning_flops += flops;
        } else {
          ++s.confirmation_runs;
          report.confirmation_flops += flops;
        }
        if (stopped) {
          ++s.stopped_runs;
          ++report.stopped_runs;
          const double steps_saved = double(std::max<int64_t>(0, r->job->max_steps - r->job->step));
          report.stopped_flops_saved +=
              flops_model.training(steps_saved * double(r->job->batch_tokens), steps_saved);
        }
      }
      if (tried) s.values.push_back(cell.lr);
      if (tried && row.tunes_weight_decay) s.weight_decays.push_back(cell.wd);
    }
    report.stages.push_back(std::move(s));
  }
  for (const TuningStage& s : report.stages) families[s.family].push_back(&s);
  for (const auto& [family, stages] : families) {
    std::set<int> stage_numbers;
    for (const TuningStage* s : stages) stage_numbers.insert(s->stage);
    if (stage_numbers.size() < 2) continue;  // not a telescope
    TelescopeCost c;
    c.family = family;
    c.optimizer = stages.front()->optimizer;
    c.widths = int(stage_numbers.size());
    const TuningStage* first = stages.front();
    const TuningStage* last = stages.front();
    for (const TuningStage* s : stages) {
      c.telescoped_flops += s->tuning_flops;
      if (s->stage < first->stage) first = s;
      if (s->stage > last->stage) last = s;
    }
    c.full_grid_values = int(first->values.size());
    c.full_grid_flops = double(c.full_grid_values) * last->run_budget_flops;
    report.telescopes.push_back(c);
  }
  return report;
}

}  // namespace server
