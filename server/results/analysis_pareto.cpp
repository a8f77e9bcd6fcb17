// The compute–time Pareto frontier of the paper's section 3.2 (analysis.h, ParetoFrontier).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <set>
#include <tuple>

#include "server/results/analysis_parts.h"

namespace server {

namespace {

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g s", s);
  return buf;
}

std::string point_text(const ParetoPoint& p) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%s at B = %lld (%.3g device%s): %s",
                p.optimizer == "muon" ? "Muon" : "AdamW", (long long)p.batch_tokens, p.devices,
                p.devices == 1 ? "" : "s", seconds_text(p.seconds).c_str());
  std::string text = buf;
  if (p.has_interval) {
    std::snprintf(buf, sizeof buf, " [%.3g, %.3g]", p.seconds_low, p.seconds_high);
    text += buf;
  }
  return text;
}

// Mean seconds per training step of a row's measured runs (evaluations excluded); 0: none known.
double step_seconds(const Row& row) {
  double sum = 0;
  int n = 0;
  for (const Run* r : row.best().measuring)
    if (r->summary && r->summary->steps_completed > 0 && r->summary->train_seconds > 0) {
      sum += r->summary->train_seconds / double(r->summary->steps_completed);
      ++n;
    }
  return n ? sum / n : 0;
}

// The row's point at target t: every measured seed's tokens to it, as time on B / device batch
// devices.
ParetoPoint point_of(const Row& row, size_t t, int64_t device_batch, double step) {
  ParetoPoint p;
  p.optimizer = row.optimizer;
  p.batch_tokens = row.batch_tokens;
  p.devices = double(row.batch_tokens) / double(device_batch);
  std::vector<double> tokens;
  bool all = true;
  for (const Run* r : row.best().measuring) {
    if (!r->summary) continue;
    const auto& targets = r->summary->targets;
    if (t < targets.size() && targets[t].reached && !r->at_most_targets.count(t))
      tokens.push_back(targets[t].tokens);
    else
      all = false;
    p.bounded_above = p.bounded_above || r->at_most_targets.count(t) > 0;
  }
  p.seeds = int(tokens.size());
  p.reached = all && !tokens.empty() && step > 0;
  if (!p.reached) return p;
  double gm = 0, low = 0, high = 0;
  log_t_interval(tokens, gm, low, high);
  const double per_token = step / double(row.batch_tokens);
  p.seconds = gm * per_token;
  p.has_interval = int(tokens.size()) >= kMinPairsForInterval;
  p.seconds_low = p.has_interval ? low * per_token : p.seconds;
  p.seconds_high = p.has_interval ? high * per_token : p.seconds;
  return p;
}

void mark_frontier(std::vector<ParetoPoint>& points) {
  std::sort(points.begin(), points.end(), [](const ParetoPoint& a, const ParetoPoint& b) {
    return std::tie(a.optimizer, a.devices) < std::tie(b.optimizer, b.devices);
  });
  std::map<std::string, double> fastest;  // per optimizer, over fewer devices so far
  for (ParetoPoint& p : points) {
    if (!p.reached) continue;
    auto [it, first] = fastest.try_emplace(p.optimizer, std::numeric_limits<double>::infinity());
    p.on_frontier = p.seconds < it->second;
    it->second = std::min(it->second, p.seconds);
  }
}

// The rule of docs/statistics.md: Muon dominates when each AdamW frontier point is beaten, the
// intervals apart, by a Muon point on no more devices; AdamW holds where one of its frontier
// points is faster, the intervals apart, than every Muon point on no more devices.
void judge(ParetoFrontier& f) {
  std::vector<const ParetoPoint*> adamw, muon;
  for (const ParetoPoint& p : f.points)
    if (p.bounded_above) {
      f.why = std::string(p.optimizer == "muon" ? "Muon" : "AdamW") +
              " at B = " + std::to_string(p.batch_tokens) +
              " reaches the target at its ladder's smallest budget already: its time is only "
              "bounded above, and the plane cannot be judged without it";
      return;
    }
  for (const ParetoPoint& p : f.points) {
    if (p.optimizer == "adamw" && p.on_frontier) adamw.push_back(&p);
    if (p.optimizer == "muon" && p.reached) muon.push_back(&p);
  }
  if (adamw.empty() || muon.empty()) {
    f.why = std::string(adamw.empty() ? "AdamW" : "Muon") +
            " reaches the target at no batch size with every seed";
    return;
  }
  for (const auto* list : {&adamw, &muon})
    for (const ParetoPoint* p : *list)
      if (!p->has_interval) {
        f.why = "fewer than " + std::to_string(kMinPairsForInterval) + " seeds: " + point_text(*p) +
                " has no interval";
        return;
      }
  std::string open;
  for (const ParetoPoint* a : adamw) {
    bool beaten = false, holds = true, any = false;
    for (const ParetoPoint* m : muon) {
      if (m->devices > a->devices) continue;
      any = true;
      beaten = beaten || m->seconds_high < a->seconds_low;
      holds = holds && m->seconds_low > a->seconds_high;
    }
    if (any && holds) {
      f.verdict = ParetoVerdict::kNotDominated;
      f.why = point_text(*a) + " is faster than every Muon point on as few devices";
      return;
    }
    if (!beaten && open.empty())
      open = point_text(*a) + (any ? " is not beaten, intervals apart, by a Muon point on as few "
                                     "devices"
                                   : " has no Muon point on as few devices");
  }
  if (open.empty()) {
    f.verdict = ParetoVerdict::kMuonDominates;
    f.why =
        "every AdamW frontier point is beaten, intervals apart, by a Muon point on as few "
        "devices";
  } else {
    f.why = open;
  }
}

}  // namespace

std::vector<ParetoFrontier> pareto_frontiers(const std::vector<Row>& rows,
                                             const std::vector<double>& targets,
                                             TargetReading reading) {
  std::map<std::string, std::vector<const Row*>> groups;
  for (const Row& row : rows)
    if (!row.cells.empty() && (row.optimizer == "adamw" || row.optimizer == "muon"))
      groups[label_without(row.label, {"optimizer=", "batch_tokens=", "tokens="})].push_back(&row);
  std::vector<ParetoFrontier> out;
  for (const auto& [group, members] : groups) {
    int64_t device_batch = std::numeric_limits<int64_t>::max();
    for (const Row* r : members) device_batch = std::min(device_batch, r->batch_tokens);
    std::map<std::string, double> step;  // per optimizer, at one device's batch
    std::set<std::string> optimizers;
    for (const Row* r : members) {
      optimizers.insert(r->optimizer);
      if (r->batch_tokens == device_batch && !step.count(r->optimizer))
        step[r->optimizer] = step_seconds(*r);
    }
    if (optimizers.size() < 2) continue;
    for (size_t t = 0; t < targets.size(); ++t) {
      ParetoFrontier f;
      f.reading = reading;
      f.group = group;
      f.target = targets[t];
      f.device_batch_tokens = device_batch;
      f.adamw_step_seconds = step["adamw"];
      f.muon_step_seconds = step["muon"];
      for (const Row* r : members)
        f.points.push_back(point_of(*r, t, device_batch, step[r->optimizer]));
      mark_frontier(f.points);
      if (f.adamw_step_seconds > 0 && f.muon_step_seconds > 0)
        judge(f);
      else
        f.why = "no seconds per step recorded for " +
                std::string(f.adamw_step_seconds > 0 ? "Muon" : "AdamW") +
                " at B = " + std::to_string(device_batch) + ", one device's batch";
      out.push_back(std::move(f));
    }
  }
  return out;
}

}  // namespace server
