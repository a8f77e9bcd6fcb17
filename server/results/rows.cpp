#include "server/results/rows.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "server/results/bracketing.h"
#include "server/results/config_columns.h"
#include "sweep_file/sweep_spec.h"

namespace server {

using nlohmann::json;

Stat stat_of(const std::vector<double>& v, int of) {
  Stat s;
  s.n = int(v.size());
  s.of = of;
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= double(v.size());
  if (v.size() > 1) {
    double ss = 0;
    for (double x : v) ss += (x - s.mean) * (x - s.mean);
    s.std = std::sqrt(ss / double(v.size() - 1));
  }
  return s;
}

bool counts_against_its_lr(JobState state) {
  return state == JobState::kDiverged || state == JobState::kFailed ||
         state == JobState::kCancelled;
}

int runs_against_its_lr(const RunCounts& c) { return c.diverged + c.failed + c.cancelled; }

void count(RunCounts& c, JobState state) {
  ++c.total;
  switch (state) {
    case JobState::kSucceeded:
      ++c.succeeded;
      break;
    case JobState::kDiverged:
      ++c.diverged;
      break;
    case JobState::kFailed:
      ++c.failed;
      break;
    case JobState::kCancelled:
      ++c.cancelled;
      break;
    case JobState::kStopped:
      ++c.stopped;
      break;
    default:
      ++c.unfinished;
  }
}

// "baseline/optimizer=muon/lr=0.01/batch_tokens=1024" without the parts named in `drop`.
const Row* row_of(const Grouping& g, int64_t job_id) {
  const auto run =
      std::find_if(g.runs.begin(), g.runs.end(), [&](const Run& r) { return r.job->id == job_id; });
  if (run == g.runs.end() || run->row_key.empty()) return nullptr;
  const auto row = std::find_if(g.rows.begin(), g.rows.end(),
                                [&](const Row& r) { return r.key == run->row_key; });
  return row == g.rows.end() ? nullptr : &*row;
}

std::string label_without(const std::string& label, std::initializer_list<const char*> drop) {
  std::string out;
  size_t start = 0;
  while (start <= label.size()) {
    const size_t end = std::min(label.find('/', start), label.size());
    const std::string part = label.substr(start, end - start);
    bool keep = true;
    for (const char* d : drop) keep = keep && !part.starts_with(d);
    if (keep) out += (out.empty() ? "" : "/") + part;
    start = end + 1;
  }
  return out;
}

std::vector<AxisNeighbour> axis_neighbours(const Row& row, size_t cell) {
  using sweep_file::TuneAxis;
  std::vector<AxisNeighbour> out;
  const Cell& at = row.cells[cell];
  for (TuneAxis axis : {TuneAxis::kLr, TuneAxis::kWeightDecay}) {
    if (axis == TuneAxis::kWeightDecay && !row.tunes_weight_decay) continue;
    const auto along = [axis](const Cell& c) { return axis == TuneAxis::kLr ? c.lr : c.wd; };
    const auto across = [axis](const Cell& c) { return axis == TuneAxis::kLr ? c.wd : c.lr; };
    bool varies = false;
    for (const Cell& c : row.cells) varies = varies || !sweep_file::same_value(along(c), along(at));
    if (!varies) continue;
    AxisNeighbour down{axis, false, std::nullopt}, up{axis, true, std::nullopt};
    for (size_t i = 0; i < row.cells.size(); ++i) {
      const Cell& c = row.cells[i];
      if (i == cell || !sweep_file::same_value(across(c), across(at))) continue;
      if (along(c) < along(at) && (!down.cell || along(c) > along(row.cells[*down.cell])))
        down.cell = i;
      if (along(c) > along(at) && (!up.cell || along(c) < along(row.cells[*up.cell]))) up.cell = i;
    }
    out.push_back(down);
    out.push_back(up);
  }
  return out;
}

bool has_open_side(const Row& row, size_t cell) {
  for (const AxisNeighbour& n : axis_neighbours(row, cell))
    if (!n.cell) return true;
  return false;
}

namespace {

// What a run computes, without what never changes it (config_columns.h: is_bookkeeping_path) and
// without settings its optimizer ignores (an AdamW run has no Muon settings and no second lr).
json setting_of(const JobRow& j, const json& config) {
  json c = without_bookkeeping(config);
  json& o = c["optimizer"];
  if (o.value("name", std::string("adamw")) != "muon") {
    o.erase("muon");
    o.erase("adamw_lr");
  }
  c["ablation"] = j.ablation;  // ablation rows never merge or pair across each other
  return c;
}

// The same setting whatever the optimizer.
json without_optimizer(json setting) {
  for (const char* k : {"name", "lr", "adamw_lr", "muon"}) setting["optimizer"].erase(k);
  return setting;
}

// The same setting whatever the optimizer and the architecture (attention, feed-forward).
json without_architecture(json setting) {
  setting = without_optimizer(std::move(setting));
  for (const char* k :
       {"preset", "attention", "kv_latent_dim", "q_latent_dim", "rope_dim", "ffn", "n_experts",
        "top_k", "expert_ffn_hidden", "shared_expert", "moe_aux_loss_coef"})
    setting["model"].erase(k);
  return setting;
}

// The same setting whatever the model width (what telescoping varies: sweep_file::at_width).
json without_width(json setting) {
  for (const char* k : {"hidden", "n_head", "ffn_hidden"}) setting["model"].erase(k);
  return setting;
}

// Without the width and the batch, nor what follows the batch in steps.
json without_width_and_batch(json setting) {
  setting = without_width(std::move(setting));
  for (const char* k : {"batch_tokens", "micro_batch", "max_steps", "eval_every"})
    setting["training"].erase(k);
  return setting;
}

// The lr a row uses: docs/statistics.md, "Learning-rate selection". In a fixed sweep a STOPPED
// run (a health rule stopped it: health_spec.h) counts against its lr like a diverged one, so
// that an lr is not credited with the mean of the seeds that survived; in a tuned sweep the
// stopped runs are early stopping's, ranked by the planner's rules (bracketing.h).
void select_lr(Row& row, bool tuned) {
  const auto against = [tuned](const Cell& c) {
    return runs_against_its_lr(c.selecting) + (tuned ? 0 : c.selecting.stopped);
  };
  bool any = false;
  for (size_t i = 0; i < row.cells.size(); ++i) {
    const Cell& c = row.cells[i];
    row.choice.provisional = row.choice.provisional || c.selecting.unfinished > 0;
    if (c.selecting_val_loss.n == 0) continue;
    const int bad = against(c);
    const Cell& s = row.cells[row.selected];
    const int s_bad = against(s);
    if (!any || std::make_tuple(bad > 0, bad, c.selecting_val_loss.mean) <
                    std::make_tuple(s_bad > 0, s_bad, s.selecting_val_loss.mean))
      row.selected = i;  // cells are in increasing (lr, wd): a tie keeps the smaller
    any = true;
  }
  row.choice.decided = any;
  row.choice.lr = any ? row.best().lr : 0;
  row.choice.weight_decay = any ? row.best().wd : 0;
  row.choice.candidates = int(row.cells.size());
  row.choice.at_grid_edge = any && has_open_side(row, row.selected);
}

// Extensions are the values a row tried beyond its stage's start values (the cells of its
// extension runs); they run out at max_extensions.
void count_extensions(Row& row, const sweep_file::TuneSpec& tune) {
  row.choice.tuned = true;
  for (const Cell& cell : row.cells) {
    bool extension = false;
    for (const Run* r : cell.runs)
      extension = extension || r->job->role == sweep_file::JobRole::kExtension;
    row.choice.extensions += extension ? 1 : 0;
  }
  row.choice.extensions_exhausted = row.choice.at_grid_edge && !row.choice.provisional &&
                                    row.choice.extensions >= tune.max_extensions;
  if (!row.choice.decided || row.choice.at_grid_edge) return;
  const BracketCheck check = check_bracket(row, tune.noise);
  row.choice.bracketed = check.bracketed();
  bool stopped_neighbour = false;
  for (const NeighbourCheck& n : check.neighbours)
    stopped_neighbour = stopped_neighbour || n.stopped;
  row.choice.within_noise = !row.choice.bracketed && !row.choice.provisional &&
                            !stopped_neighbour && tune.noise &&
                            !next_noise_seed(row, check, *tune.noise);
}

}  // namespace

// The runs of a sweep grouped into rows and cells (see analysis.h), each row with its lr chosen.
void group_into_rows(const std::vector<JobRow>& jobs,
                     const std::map<int64_t, std::string>& summaries,
                     const std::optional<sweep_file::TuneSpec>& tune, Grouping& g) {
  for (const auto& [id, text] : summaries) {
    const json s = json::parse(text, nullptr, false);
    try {
      if (!s.is_object()) throw trainer_core::RunRecordError("not a JSON object");
      g.summaries[id] = trainer_core::summary_from_json(s);
    } catch (const trainer_core::RunRecordError&) {
      ++g.unparsable_summaries;  // the run counts as one without a result
    }
  }
  g.runs.resize(jobs.size());
  std::map<std::string, size_t> row_index;
  // row key -> (lr, wd) -> cell
  std::map<std::string, std::map<std::pair<double, double>, size_t>> cell_index;
  for (size_t i = 0; i < jobs.size(); ++i) {
    const JobRow& j = jobs[i];
    Run& run = g.runs[i];
    run.job = &j;
    run.selects = j.role != sweep_file::JobRole::kConfirmation;
    run.measures = !tune || std::find(tune->confirm_seeds.begin(), tune->confirm_seeds.end(),
                                      j.seed) != tune->confirm_seeds.end();
    if (j.role == sweep_file::JobRole::kRewind) {  // no cell's lr describes it: left out
      ++g.rewinds;
      continue;
    }
    if (j.state == JobState::kSucceeded || j.state == JobState::kDiverged)
      if (auto it = g.summaries.find(j.id); it != g.summaries.end()) run.summary = &it->second;
    const json config = json::parse(j.config, nullptr, false);
    if (!config.is_object()) {
      ++g.unreadable;
      continue;
    }
    json setting = setting_of(j, config);
    run.lr = setting["optimizer"].value("lr", 0.0);
    setting["optimizer"].erase("lr");
    const bool tunes_wd = tune && tune->weight_decay;
    if (tunes_wd) {  // a coordinate of the row's cells, not part of its setting
      run.wd = setting["optimizer"].value("weight_decay", 0.0);
      setting["optimizer"].erase("weight_decay");
    }
    run.row_key = sweep_file::json_hash(setting);
    if (row_index.try_emplace(run.row_key, g.rows.size()).second) {
      Row row;
      row.label = row.base_label = tunes_wd ? label_without(j.label, {"lr=", "weight_decay="})
                                            : label_without(j.label, {"lr="});
      row.tunes_weight_decay = tunes_wd;
      row.key = run.row_key;
      row.family_key = sweep_file::json_hash(without_width(setting));
      row.law_key = sweep_file::json_hash(without_width_and_batch(setting));
      row.stage = j.stage;
      row.width = config.value("model", json::object()).value("hidden", 0);
      row.ablation = j.ablation;
      row.optimizer = config["optimizer"].value("name", std::string("adamw"));
      row.batch_tokens = j.batch_tokens;
      row.attention = config.value("model", json::object()).value("attention", std::string("mha"));
      row.ffn = config.value("model", json::object()).value("ffn", std::string("dense"));
      row.pair_key = sweep_file::json_hash(without_optimizer(setting));
      row.reference_key = sweep_file::json_hash(without_architecture(setting));
      g.rows.push_back(std::move(row));
    }
    cell_index[run.row_key].try_emplace({run.lr, run.wd}, 0);
  }
  for (auto& [key, points] : cell_index) {  // cells by increasing (lr, wd)
    Row& row = g.rows[row_index[key]];
    for (auto& [point, index] : points) {
      index = row.cells.size();
      row.cells.emplace_back();
      row.cells.back().lr = point.first;
      row.cells.back().wd = point.second;
    }
  }
  for (const Run& run : g.runs) {
    if (run.row_key.empty()) continue;
    Cell& cell = g.rows[row_index[run.row_key]].cells[cell_index[run.row_key][{run.lr, run.wd}]];
    cell.runs.push_back(&run);
    if (run.measures) {
      cell.measuring.push_back(&run);
      count(cell.counts, run.job->state);
    }
    if (run.selects) count(cell.selecting, run.job->state);
  }
  // Display labels stay unique even for sweeps expanded before labels named every difference.
  std::set<std::string> used;
  for (Row& row : g.rows) {
    const std::string base = row.label;
    for (int n = 2; !used.insert(row.label).second; ++n)
      row.label = base + " (" + std::to_string(n) + ")";
  }
  for (Row& row : g.rows) {
    for (Cell& cell : row.cells) {
      std::vector<double> losses, selecting;
      for (const Run* r : cell.runs)
        if (r->summary && r->job->state == JobState::kSucceeded) {
          const double l = r->summary->final_val_loss;
          if (!std::isfinite(l)) continue;
          if (r->measures) losses.push_back(l);
          if (r->selects) selecting.push_back(l);
        }
      cell.final_val_loss = stat_of(losses, cell.counts.total);
      cell.selecting_val_loss = stat_of(selecting, cell.selecting.total);
    }
    select_lr(row, tune.has_value());
    if (tune) count_extensions(row, *tune);
  }
}

}  // namespace server
