#include "sweep_file/analysis_spec.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "sweep_file/tune_spec.h"
#include "trainer_core/config/json_reader.h"

namespace sweep_file {

using nlohmann::json;
using trainer_core::ConfigProblem;

AnalysisSpec read_analysis_spec(const json& doc, const std::vector<int64_t>& seeds, bool tuned,
                                std::vector<ConfigProblem>& problems) {
  AnalysisSpec spec;
  if (!doc.is_object() || !doc.contains("analysis")) return spec;
  const json& a = doc["analysis"];
  if (!a.is_object()) {
    problems.push_back({"analysis",
                        "must be a map (selection, selection_seeds, targets, tables_at_budget, "
                        "fit_from_tokens, trend_margin)"});
    return spec;
  }
  if (tuned && (a.contains("selection") || a.contains("selection_seeds"))) {
    problems.push_back({"analysis.selection",
                        "a tuned sweep chooses its lr in the planner (final loss over tune.seeds, "
                        "measured with tune.confirm_seeds): leave selection out"});
    return spec;
  }
  trainer_core::JsonReader r(a, "analysis", problems);
  r.read("selection", spec.selection);
  r.read("targets", spec.targets);
  r.read("tables_at_budget", spec.tables_at_budget);
  r.read("fit_from_tokens", spec.fit_from_tokens);
  r.read("trend_margin", spec.trend_margin);
  if (!(spec.trend_margin > 0 && spec.trend_margin <= 1))
    problems.push_back({"analysis.trend_margin",
                        "must be in (0, 1]: the factor per doubling of B that R may fall by and "
                        "still count as not falling (1: no fall tolerated)"});
  const bool given = r.has("selection_seeds");
  const size_t before = problems.size();
  const std::vector<int64_t> named =
      given ? read_seeds(r, "selection_seeds", "analysis.selection_seeds", problems)
            : std::vector<int64_t>();
  const bool well_formed = problems.size() == before;  // else indices into `named` would shift
  r.finish();
  for (size_t i = 0; i < named.size() && well_formed; ++i) {
    if (std::find(seeds.begin(), seeds.end(), named[i]) == seeds.end())
      problems.push_back({"analysis.selection_seeds[" + std::to_string(i) + "]",
                          "is not one of the sweep's seeds"});
    else
      spec.selection_seeds.push_back(named[i]);
  }
  if (spec.selection == SelectionRule::kHeldOutSeeds) {
    if (!given)
      problems.push_back(
          {"analysis.selection_seeds", "held_out_seeds needs the seeds that choose (e.g. [1])"});
    else if (spec.selection_seeds.size() >= seeds.size())
      problems.push_back({"analysis.selection_seeds",
                          "leaves no seed to measure R_L(B) on: keep at least one of the sweep's "
                          "seeds out of it"});
  } else if (given) {
    problems.push_back({"analysis.selection_seeds", "is read only with selection: held_out_seeds"});
  }
  return spec;
}

json to_json(const AnalysisSpec& spec) {
  json j = {{"selection", trainer_core::name_of(spec.selection)},
            {"targets", trainer_core::name_of(spec.targets)}};
  if (!spec.selection_seeds.empty()) j["selection_seeds"] = spec.selection_seeds;
  if (spec.tables_at_budget != 0) j["tables_at_budget"] = spec.tables_at_budget;
  if (spec.fit_from_tokens != 0) j["fit_from_tokens"] = spec.fit_from_tokens;
  j["trend_margin"] = spec.trend_margin;
  return j;
}

AnalysisSpec analysis_spec_from_json(const json& j) {
  AnalysisSpec spec;
  if (j.is_null() || (j.is_string() && j.get<std::string>().empty())) return spec;
  if (!j.is_object() || !j.contains("selection") || !j["selection"].is_string())
    throw std::invalid_argument("analysis spec: not a stored analysis section: " + j.dump());
  const auto rule = trainer_core::parse_name<SelectionRule>(j["selection"].get<std::string>());
  if (!rule) throw std::invalid_argument("analysis spec: unknown selection " + j.dump());
  spec.selection = *rule;
  if (j.contains("targets")) {
    const auto targets = trainer_core::parse_name<TargetRule>(j["targets"].get<std::string>());
    if (!targets) throw std::invalid_argument("analysis spec: unknown targets " + j.dump());
    spec.targets = *targets;
  }
  if (j.contains("selection_seeds"))
    spec.selection_seeds = j["selection_seeds"].get<std::vector<int64_t>>();
  if (j.contains("tables_at_budget")) spec.tables_at_budget = j["tables_at_budget"].get<int64_t>();
  if (j.contains("fit_from_tokens")) spec.fit_from_tokens = j["fit_from_tokens"].get<int64_t>();
  if (j.contains("trend_margin")) spec.trend_margin = j["trend_margin"].get<double>();
  return spec;
}

}  // namespace sweep_file
