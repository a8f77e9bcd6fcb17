#include "server/results/importance.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <map>
#include <set>

#include "server/results/config_columns.h"

namespace server {

namespace {

struct UsedRun {
  double loss;
  std::vector<std::string> values;  // one per varied path
};

// Whether every combination of the levels was run, each equally often.
bool is_balanced(const std::vector<UsedRun>& used,
                 const std::vector<std::set<std::string>>& levels) {
  std::map<std::vector<std::string>, int> cells;
  for (const UsedRun& r : used) ++cells[r.values];
  size_t combinations = 1;
  for (const auto& l : levels) combinations *= l.size();
  if (cells.size() != combinations) return false;
  const int n = cells.begin()->second;
  return std::all_of(cells.begin(), cells.end(), [&](const auto& c) { return c.second == n; });
}

// Settings that always vary together (each optimizer with its own lr: the same partition of the
// runs) cannot be told apart by any analysis of these runs: one column "a + b", its values
// "x + y", instead of two columns that each take the whole credit. Constant columns are dropped.
void merge_confounded(std::vector<std::string>& paths, std::vector<UsedRun>& used) {
  std::vector<std::vector<size_t>> partitions;  // per column: each run's first run of its value
  for (size_t i = 0; i < paths.size(); ++i) {
    std::map<std::string, size_t> first;
    std::vector<size_t> p;
    for (size_t r = 0; r < used.size(); ++r)
      p.push_back(first.try_emplace(used[r].values[i], r).first->second);
    partitions.push_back(std::move(p));
  }
  std::vector<std::vector<size_t>> groups;  // columns by partition, in path order
  for (size_t i = 0; i < paths.size(); ++i) {
    const bool constant =
        std::all_of(partitions[i].begin(), partitions[i].end(), [](size_t f) { return f == 0; });
    if (constant) continue;
    auto g = std::find_if(groups.begin(), groups.end(),
                          [&](const auto& group) { return partitions[group[0]] == partitions[i]; });
    if (g == groups.end())
      groups.push_back({i});
    else
      g->push_back(i);
  }
  // Each group's members of `parts` (paths, or one run's values) as one, "a + b".
  const auto merged = [&](const std::vector<std::string>& parts) {
    std::vector<std::string> out;
    for (const auto& g : groups) {
      std::string joined;
      for (size_t i : g) joined += (joined.empty() ? "" : " + ") + parts[i];
      out.push_back(std::move(joined));
    }
    return out;
  };
  for (UsedRun& u : used) u.values = merged(u.values);
  paths = merged(paths);
}

}  // namespace

std::optional<Importance> setting_importance(const std::vector<JobRow>& jobs,
                                             const std::vector<Run>& runs) {
  // A rewind's lr is no setting of the grid (rows.h leaves rewinds out): it varies nothing here.
  std::vector<JobRow> planned;
  std::copy_if(jobs.begin(), jobs.end(), std::back_inserter(planned),
               [](const JobRow& j) { return j.role != sweep_file::JobRole::kRewind; });
  const ConfigColumns columns = varying_config(planned);
  Importance out;
  std::vector<UsedRun> used;
  for (const Run& r : runs) {
    const bool usable = r.job->state == JobState::kSucceeded && r.summary &&
                        std::isfinite(r.summary->final_val_loss) && columns.values.count(r.job->id);
    if (!usable) {
      ++out.runs_left_out;
      continue;
    }
    UsedRun u{r.summary->final_val_loss, {}};
    for (const auto& v : columns.values.at(r.job->id)) u.values.push_back(v.dump());
    used.push_back(std::move(u));
  }
  out.runs_used = int(used.size());
  std::vector<std::string> paths = columns.paths;
  merge_confounded(paths, used);
  if (used.size() < 3 || paths.empty()) return std::nullopt;
  double mean = 0;
  for (const UsedRun& u : used) mean += u.loss;
  mean /= double(used.size());
  double total = 0;
  for (const UsedRun& u : used) total += (u.loss - mean) * (u.loss - mean);
  if (!(total > 0)) return std::nullopt;

  std::vector<std::set<std::string>> levels(paths.size());
  for (const UsedRun& u : used)
    for (size_t i = 0; i < u.values.size(); ++i) levels[i].insert(u.values[i]);
  double shares = 0;
  for (size_t i = 0; i < paths.size(); ++i) {
    std::map<std::string, std::pair<double, int>> by_level;  // sum, count
    for (const UsedRun& u : used) {
      auto& [sum, n] = by_level[u.values[i]];
      sum += u.loss;
      ++n;
    }
    SettingImportance s{paths[i], 0, {}};
    double between = 0;
    for (const auto& [value, sum_n] : by_level) {
      const double level_mean = sum_n.first / sum_n.second;
      between += sum_n.second * (level_mean - mean) * (level_mean - mean);
      s.levels.push_back({value, level_mean, sum_n.second});
    }
    s.share = std::clamp(between / total, 0.0, 1.0);
    shares += s.share;
    out.settings.push_back(std::move(s));
  }
  if (out.settings.empty()) return std::nullopt;
  std::stable_sort(out.settings.begin(), out.settings.end(),
                   [](const auto& a, const auto& b) { return a.share > b.share; });
  out.balanced = is_balanced(used, levels);
  out.residual_share = std::max(0.0, 1.0 - shares);
  out.note =
      "Main effects of a functional ANOVA over " + std::to_string(out.runs_used) +
      " finished run(s) (" + std::to_string(out.runs_left_out) +
      " left out: not SUCCEEDED or no final val loss): each setting's share of the variance "
      "of final val loss explained by its level means. " +
      (out.balanced ? "The design is balanced (every combination of the settings' levels ran "
                      "equally often), so the shares are fANOVA's main-effect fractions and the "
                      "rest is interactions and seed noise."
                    : "The design is not balanced (some combinations ran more often, or not at "
                      "all: extensions, exclusions, failures), so settings that vary together "
                      "share credit and the shares may sum past 1; read them as a ranking.") +
      " A main effect says nothing of interactions; a numeric setting counts by level." +
      (std::any_of(paths.begin(), paths.end(),
                   [](const std::string& p) { return p.find(" + ") != std::string::npos; })
           ? " Settings that always varied together are one row (a + b): these runs cannot "
             "tell them apart."
           : "");
  return out;
}

}  // namespace server
