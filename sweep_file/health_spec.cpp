#include "sweep_file/health_spec.h"

#include <stdexcept>

#include "trainer_core/config/json_reader.h"

namespace sweep_file {

using nlohmann::json;
using trainer_core::ConfigProblem;

namespace {

constexpr size_t kMaxRules = 16;

// Conditions the issue names that this release does not judge yet: refused by name, so that a
// file written for them says why instead of "unknown".
constexpr const char* kNotYet[] = {"tokens_per_second_below_row_median", "diverged"};

// One rule at `path` ("health[2]"); false when it has problems.
bool read_rule(const json& item, const std::string& path, HealthRule& rule,
               std::vector<ConfigProblem>& problems) {
  if (!item.is_object() || !item.contains("when") || !item.contains("do")) {
    problems.push_back({path, "must be a map {when: {CONDITION: N}, do: ACTION}"});
    return false;
  }
  const size_t before = problems.size();
  trainer_core::JsonReader r(item, path, problems);
  r.claim("when");
  r.read("do", rule.action);
  r.finish();
  const json& when = item["when"];
  if (when.is_string()) {
    for (const char* name : kNotYet)
      if (when == name)
        problems.push_back({path + ".when", std::string(name) + " is not judged in this release"});
    if (problems.size() == before)
      problems.push_back({path + ".when", "must be a map {CONDITION: N}"});
    return false;
  }
  if (!when.is_object() || when.size() != 1) {
    problems.push_back({path + ".when",
                        "must name one condition: {loss_spikes_over: N} or "
                        "{no_val_improvement_evals: N}"});
    return false;
  }
  const std::string name = when.begin().key();
  for (const char* not_yet : kNotYet)
    if (name == not_yet) {
      problems.push_back({path + ".when." + name, "is not judged in this release"});
      return false;
    }
  const auto condition = trainer_core::parse_name<HealthCondition>(name);
  if (!condition) {
    problems.push_back(
        {path + ".when." + name, "unknown condition (loss_spikes_over, no_val_improvement_evals)"});
    return false;
  }
  rule.when = *condition;
  const json& n = when.begin().value();
  const int least = rule.when == HealthCondition::kLossSpikesOver ? 0 : 1;
  if (!n.is_number_integer() || n.get<int64_t>() < least || n.get<int64_t>() > 1000000) {
    problems.push_back({path + ".when." + name,
                        "must be an integer between " + std::to_string(least) + " and 1000000"});
    return false;
  }
  rule.threshold = int(n.get<int64_t>());
  return problems.size() == before;
}

}  // namespace

std::vector<HealthRule> read_health_rules(const json& doc, std::vector<ConfigProblem>& problems) {
  std::vector<HealthRule> rules;
  if (!doc.is_object() || !doc.contains("health")) return rules;
  const json& h = doc["health"];
  if (!h.is_array()) {
    problems.push_back({"health", "must be a list of rules {when: {CONDITION: N}, do: ACTION}"});
    return rules;
  }
  if (h.size() > kMaxRules) {
    problems.push_back({"health", "lists more than " + std::to_string(kMaxRules) + " rules"});
    return rules;
  }
  for (size_t i = 0; i < h.size(); ++i) {
    HealthRule rule;
    if (read_rule(h[i], "health[" + std::to_string(i) + "]", rule, problems)) rules.push_back(rule);
  }
  return rules;
}

std::string describe(const HealthRule& rule) {
  return std::string(trainer_core::name_of(rule.when)) + " " + std::to_string(rule.threshold) +
         ": " + trainer_core::name_of(rule.action);
}

json to_json(const std::vector<HealthRule>& rules) {
  json out = json::array();
  for (const HealthRule& r : rules)
    out.push_back({{"when", trainer_core::name_of(r.when)},
                   {"threshold", r.threshold},
                   {"do", trainer_core::name_of(r.action)}});
  return out;
}

std::vector<HealthRule> health_rules_from_json(const json& j) {
  std::vector<HealthRule> rules;
  if (j.is_string() && j.get<std::string>().empty()) return rules;
  if (!j.is_array()) throw std::invalid_argument("stored health rules: not a list");
  for (const json& r : j) {
    const auto when = trainer_core::parse_name<HealthCondition>(r.value("when", std::string()));
    const auto action = trainer_core::parse_name<HealthAction>(r.value("do", std::string()));
    if (!when || !action || !r.contains("threshold") || !r["threshold"].is_number_integer())
      throw std::invalid_argument("stored health rule: " + r.dump());
    rules.push_back({*when, r["threshold"].get<int>(), *action});
  }
  return rules;
}

}  // namespace sweep_file
