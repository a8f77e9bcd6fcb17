#include "analysis.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <tuple>

#include <nlohmann/json.hpp>

#include "trainer_core/util/rng.h"

namespace server {

using nlohmann::json;

namespace {

Stat stat_of(const std::vector<double>& v) {
  Stat s;
  s.n = int(v.size());
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

// tokens to target `index` from a summary, or NaN when not reached.
double tokens_to_target(const json& summary, size_t index) {
  const auto& t = summary.value("targets", json::array());
  if (index >= t.size() || !t[index].value("reached", false)) return NAN;
  return t[index]["tokens"].get<double>();
}

// The row a ratio belongs to: the job's label without its optimizer and batch-size parts
// ("baseline/model=mla-moe/optimizer=muon/batch_tokens=1024" -> "baseline/model=mla-moe").
std::string ratio_group(const std::string& label) {
  std::string out;
  size_t start = 0;
  while (start <= label.size()) {
    const size_t end = std::min(label.find('/', start), label.size());
    const std::string part = label.substr(start, end - start);
    if (!part.starts_with("optimizer=") && !part.starts_with("batch_tokens=")) out += (out.empty() ? "" : "/") + part;
    start = end + 1;
  }
  return out;
}

}  // namespace

void bootstrap_mean_ci(const std::vector<double>& values, double& mean, double& low, double& high) {
  mean = stat_of(values).mean;
  low = high = mean;
  if (values.size() < 2) return;
  constexpr int kResamples = 2000;
  trainer_core::UniformRng rng(12345);
  std::vector<double> means(kResamples);
  for (double& m : means) {
    double s = 0;
    for (size_t i = 0; i < values.size(); ++i) s += values[rng.below(values.size())];
    m = s / double(values.size());
  }
  std::sort(means.begin(), means.end());
  low = means[size_t(0.025 * kResamples)];
  high = means[size_t(0.975 * kResamples) - 1];
}

SweepResults analyze_sweep(const SweepRow& sweep, const std::vector<JobRow>& jobs,
                           const std::map<int64_t, std::string>& summaries) {
  SweepResults out;
  out.targets = sweep.targets;
  std::map<int64_t, json> parsed;
  for (const auto& [id, text] : summaries) parsed[id] = json::parse(text, nullptr, false);
  auto summary_of = [&](const JobRow& j) -> const json* {
    if (j.state != "SUCCEEDED") return nullptr;
    auto it = parsed.find(j.id);
    return it == parsed.end() || it->second.is_discarded() ? nullptr : &it->second;
  };

  // Ablation table: one row per label, in expansion order.
  std::vector<std::string> order;
  std::map<std::string, std::vector<const JobRow*>> by_label;
  for (const JobRow& j : jobs) {
    if (!by_label.count(j.label)) order.push_back(j.label);
    by_label[j.label].push_back(&j);
  }
  std::map<std::string, double> mean_ppl;
  for (const std::string& label : order) {
    AblationRow row;
    row.label = label;
    const auto& group = by_label[label];
    row.baseline = group.front()->ablation == sweep.baseline;
    row.runs = int(group.size());
    std::vector<double> ppl, steps, spikes, memory;
    for (const JobRow* j : group) {
      const json* s = summary_of(*j);
      if (!s) continue;
      ppl.push_back(s->value("final_val_ppl", NAN));
      spikes.push_back(s->value("loss_spike_count", 0.0));
      memory.push_back(s->value("peak_memory_bytes", 0.0) / 1048576.0);
      const auto& t = s->value("targets", json::array());
      if (!t.empty() && t[0].value("reached", false)) steps.push_back(t[0]["steps"].get<double>());
    }
    row.val_ppl = stat_of(ppl);
    row.steps_to_target = stat_of(steps);
    row.spikes = stat_of(spikes);
    row.peak_memory_mb = stat_of(memory);
    if (row.val_ppl.n > 0) mean_ppl[label] = row.val_ppl.mean;
    out.ablation.push_back(row);
  }
  // Delta vs the baseline row of the same grid cell: labels are "<ablation><grid suffix>".
  for (AblationRow& row : out.ablation) {
    const JobRow* any = by_label[row.label].front();
    const std::string baseline_label = sweep.baseline + row.label.substr(any->ablation.size());
    auto b = mean_ppl.find(baseline_label);
    auto r = mean_ppl.find(row.label);
    if (b != mean_ppl.end() && r != mean_ppl.end()) {
      row.has_delta = true;
      row.delta_val_ppl = r->second - b->second;
    }
  }

  // R_L(B): pair AdamW and Muon runs that share a pair key and a seed.
  struct Pairing {
    const JobRow* adamw = nullptr;
    const JobRow* muon = nullptr;
  };
  std::map<std::string, std::map<int64_t, Pairing>> groups;
  std::vector<std::string> group_order;
  for (const JobRow& j : jobs) {
    if (!groups.count(j.pair_key)) group_order.push_back(j.pair_key);
    Pairing& p = groups[j.pair_key][j.seed];
    (j.optimizer == "muon" ? p.muon : p.adamw) = &j;
  }
  for (const std::string& key : group_order) {
    const auto& seeds = groups[key];
    for (size_t t = 0; t < sweep.targets.size(); ++t) {
      std::vector<double> ratios;
      const JobRow* example = nullptr;
      for (const auto& [seed, pair] : seeds) {
        if (!pair.adamw || !pair.muon) continue;
        example = pair.adamw;
        const json* sa = summary_of(*pair.adamw);
        const json* sm = summary_of(*pair.muon);
        if (!sa || !sm) continue;
        const double ta = tokens_to_target(*sa, t), tm = tokens_to_target(*sm, t);
        if (std::isfinite(ta) && std::isfinite(tm) && tm > 0) ratios.push_back(ta / tm);
      }
      if (!example || ratios.empty()) continue;  // only targets both optimizers reach count
      RatioPoint p;
      p.group = ratio_group(example->label);
      p.batch_tokens = example->batch_tokens;
      p.target = sweep.targets[t];
      p.pairs = int(ratios.size());
      bootstrap_mean_ci(ratios, p.mean, p.ci_low, p.ci_high);
      out.ratios.push_back(p);
    }
  }
  std::sort(out.ratios.begin(), out.ratios.end(), [](const RatioPoint& a, const RatioPoint& b) {
    return std::tie(a.group, a.target, a.batch_tokens) < std::tie(b.group, b.target, b.batch_tokens);
  });

  // Table 3, when more than one (attention, ffn) pair appears.
  std::vector<std::tuple<std::string, std::string, std::string>> arch_order;
  std::map<std::tuple<std::string, std::string, std::string>, std::vector<const JobRow*>> by_arch;
  std::set<std::pair<std::string, std::string>> architectures;
  for (const JobRow& j : jobs) {
    const json config = json::parse(j.config, nullptr, false);
    if (config.is_discarded()) continue;
    const auto& model = config.value("model", json::object());
    const auto key = std::make_tuple(model.value("attention", std::string("mha")), model.value("ffn", std::string("dense")), j.optimizer);
    if (!by_arch.count(key)) arch_order.push_back(key);
    by_arch[key].push_back(&j);
    architectures.insert({std::get<0>(key), std::get<1>(key)});
  }
  if (architectures.size() < 2) return out;
  for (const auto& key : arch_order) {
    ArchitectureRow row;
    std::tie(row.attention, row.ffn, row.optimizer) = key;
    std::vector<double> seconds, inference, memory, ppl, flops;
    for (const JobRow* j : by_arch[key]) {
      ++row.runs;
      const json* s = summary_of(*j);
      if (!s) continue;
      ppl.push_back(s->value("final_val_ppl", NAN));
      memory.push_back(s->value("peak_memory_bytes", 0.0) / 1048576.0);
      if (s->contains("inference")) inference.push_back((*s)["inference"].value("tokens_per_second", 0.0));
      const auto& t = s->value("targets", json::array());
      if (!t.empty() && t[0].value("reached", false)) {
        seconds.push_back(t[0]["seconds"].get<double>());
        flops.push_back(t[0]["flops"].get<double>());
      }
    }
    row.seconds_to_target = stat_of(seconds);
    row.inference_tokens_per_second = stat_of(inference);
    row.peak_memory_mb = stat_of(memory);
    row.val_ppl = stat_of(ppl);
    row.flops_to_target = stat_of(flops);
    out.architecture.push_back(row);
  }
  for (const ArchitectureRow& ref : out.architecture)
    if (ref.attention == "mha" && ref.ffn == "dense" && ref.optimizer == "adamw" && ref.flops_to_target.n > 0)
      for (ArchitectureRow& row : out.architecture)
        if (row.flops_to_target.n > 0) {
          row.has_relative_flops = true;
          row.relative_flops_to_target = row.flops_to_target.mean / ref.flops_to_target.mean;
        }
  return out;
}

}  // namespace server
