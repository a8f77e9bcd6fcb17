#include "sweep_file/health_spec.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "trainer_core/config/json_reader.h"

namespace sweep_file {

using nlohmann::json;
using trainer_core::ConfigProblem;

namespace {

constexpr size_t kMaxRules = 16;
constexpr int kMaxRewinds = 8;

constexpr const char* kConditions =
    "loss_spikes_over, no_val_improvement_evals, tokens_per_second_below_row_median, diverged";

// The threshold of `condition` at `path`; false (with a problem) when it is out of range.
bool read_threshold(HealthCondition condition, const json& n, const std::string& path,
                    double& threshold, std::vector<ConfigProblem>& problems) {
  if (condition == HealthCondition::kTokensPerSecondBelowRowMedian) {
    if (!n.is_number() || !(n.get<double>() > 0 && n.get<double>() < 1)) {
      problems.push_back({path,
                          "must be a share of the row's median between 0 and 1 (0.5: half "
                          "its pace)"});
      return false;
    }
    threshold = n.get<double>();
    return true;
  }
  const int least = condition == HealthCondition::kLossSpikesOver ? 0 : 1;
  if (!n.is_number_integer() || n.get<int64_t>() < least || n.get<int64_t>() > 1000000) {
    problems.push_back(
        {path, "must be an integer between " + std::to_string(least) + " and 1000000"});
    return false;
  }
  threshold = double(n.get<int64_t>());
  return true;
}

// rule.when from `when` (a map {CONDITION: N}, or the word `diverged`) at `path`.
bool read_condition(const json& when, const std::string& path, HealthRule& rule,
                    std::vector<ConfigProblem>& problems) {
  if (when.is_string()) {
    if (when != "diverged") {
      problems.push_back({path, "must be a map {CONDITION: N} or the word diverged"});
      return false;
    }
    rule.when = HealthCondition::kDiverged;
    return true;
  }
  if (!when.is_object() || when.size() != 1) {
    problems.push_back(
        {path, std::string("must name one condition: {CONDITION: N} (") + kConditions + ")"});
    return false;
  }
  const std::string name = when.begin().key();
  const auto condition = trainer_core::parse_name<HealthCondition>(name);
  if (!condition || *condition == HealthCondition::kDiverged) {
    problems.push_back(
        {path + "." + name, condition ? "takes no threshold: write when: diverged"
                                      : std::string("unknown condition (") + kConditions + ")"});
    return false;
  }
  rule.when = *condition;
  return read_threshold(rule.when, when.begin().value(), path + "." + name, rule.threshold,
                        problems);
}

// rule.action from `what` (a word, or {rewind: {lr_scale: F, times: N}}) at `path`.
bool read_action(const json& what, const std::string& path, HealthRule& rule,
                 std::vector<ConfigProblem>& problems) {
  const size_t before = problems.size();
  if (what == "rewind") {
    problems.push_back({path,
                        "rewind needs its factor and limit: {rewind: {lr_scale: 0.5, "
                        "times: 2}}"});
    return false;
  }
  if (what.is_object() && what.size() == 1 && what.contains("rewind")) {
    rule.action = HealthAction::kRewind;
    trainer_core::JsonReader r(what["rewind"], path + ".rewind", problems);
    r.read("lr_scale", rule.rewind.lr_scale);
    r.read("times", rule.rewind.times);
    r.finish();
    if (problems.size() != before) return false;
    if (!(rule.rewind.lr_scale > 0 && rule.rewind.lr_scale < 1))
      problems.push_back({path + ".rewind.lr_scale",
                          "must be between 0 and 1: a rewind lowers "
                          "the lr"});
    if (rule.rewind.times < 1 || rule.rewind.times > kMaxRewinds)
      problems.push_back(
          {path + ".rewind.times", "must be between 1 and " + std::to_string(kMaxRewinds)});
    return problems.size() == before;
  }
  const auto action = what.is_string()
                          ? trainer_core::parse_name<HealthAction>(what.get<std::string>())
                          : std::nullopt;
  if (!action) {
    problems.push_back({path, "must be stop, notify or {rewind: {lr_scale: F, times: N}}"});
    return false;
  }
  rule.action = *action;
  return true;
}

// Actions a condition cannot take: a diverged run has already ended, and a lower lr does not
// make a slow worker faster.
std::string refusal(const HealthRule& rule) {
  if (rule.when == HealthCondition::kDiverged && rule.action == HealthAction::kStop)
    return "a diverged run has already ended (DIVERGED): notify or rewind";
  if (rule.when == HealthCondition::kTokensPerSecondBelowRowMedian &&
      rule.action == HealthAction::kRewind)
    return "a slow run is not helped by a lower lr: notify or stop";
  return "";
}

// One rule at `path` ("health[2]"); false when it has problems.
bool read_rule(const json& item, const std::string& path, HealthRule& rule,
               std::vector<ConfigProblem>& problems) {
  if (!item.is_object() || !item.contains("when") || !item.contains("do")) {
    problems.push_back({path, "must be a map {when: CONDITION, do: ACTION}"});
    return false;
  }
  trainer_core::JsonReader r(item, path, problems);
  r.claim("when");
  r.claim("do");
  const size_t before = problems.size();
  r.finish();
  if (problems.size() != before || !read_condition(item["when"], path + ".when", rule, problems) ||
      !read_action(item["do"], path + ".do", rule, problems))
    return false;
  if (const std::string why = refusal(rule); !why.empty()) {
    problems.push_back({path + ".do", why});
    return false;
  }
  return true;
}

std::string number_text(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

// Why `rule` could never hold for a job (empty: it can); `evaluations` is -1 for a job running
// its own command.
std::string never_holds(const HealthRule& rule, int64_t evaluations) {
  const bool own_command = evaluations < 0;
  switch (rule.when) {
    case HealthCondition::kLossSpikesOver:
      return own_command ? "runs its own command, which need not flag loss spikes" : "";
    case HealthCondition::kNoValImprovementEvals:
      if (own_command) return "runs its own command, which need not evaluate";
      if (evaluations < int64_t(rule.threshold) + 1)
        return "evaluates " + std::to_string(evaluations) + " times, and the rule needs " +
               std::to_string(int64_t(rule.threshold) + 1) + " (training.eval_every)";
      return "";
    case HealthCondition::kTokensPerSecondBelowRowMedian:
      if (own_command) return "runs its own command, which need not time its training (train_s)";
      if (evaluations < 2) return "evaluates once, and its pace is read between two evaluations";
      return "";
    case HealthCondition::kDiverged:
      return "";
  }
  return "";
}

}  // namespace

std::vector<HealthRule> read_health_rules(const json& doc, std::vector<ConfigProblem>& problems) {
  std::vector<HealthRule> rules;
  if (!doc.is_object() || !doc.contains("health")) return rules;
  const json& h = doc["health"];
  if (!h.is_array()) {
    problems.push_back({"health", "must be a list of rules {when: CONDITION, do: ACTION}"});
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

void check_rules_for_job(const std::vector<HealthRule>& rules, std::optional<int64_t> evaluations,
                         const std::string& label, std::vector<ConfigProblem>& problems) {
  for (size_t i = 0; i < rules.size(); ++i)
    if (const std::string why = never_holds(rules[i], evaluations.value_or(-1)); !why.empty()) {
      problems.push_back({"health[" + std::to_string(i) + "].when",
                          "can never hold for job " + label + ": it " + why});
      return;  // one problem per job is enough to say what to change
    }
}

bool any_rewinds(const std::vector<HealthRule>& rules) {
  return std::any_of(rules.begin(), rules.end(),
                     [](const HealthRule& r) { return r.action == HealthAction::kRewind; });
}

std::string describe(const HealthRule& rule) {
  std::string text = trainer_core::name_of(rule.when);
  if (rule.when != HealthCondition::kDiverged) text += " " + number_text(rule.threshold);
  text += std::string(": ") + trainer_core::name_of(rule.action);
  if (rule.action == HealthAction::kRewind)
    text += " (lr x" + number_text(rule.rewind.lr_scale) + ", at most " +
            std::to_string(rule.rewind.times) + ")";
  return text;
}

json to_json(const std::vector<HealthRule>& rules) {
  json out = json::array();
  for (const HealthRule& r : rules) {
    json rule = {{"when", trainer_core::name_of(r.when)},
                 {"threshold", r.threshold},
                 {"do", trainer_core::name_of(r.action)}};
    if (r.action == HealthAction::kRewind) {
      rule["lr_scale"] = r.rewind.lr_scale;
      rule["times"] = r.rewind.times;
    }
    out.push_back(rule);
  }
  return out;
}

std::vector<HealthRule> health_rules_from_json(const json& j) {
  std::vector<HealthRule> rules;
  if (j.is_string() && j.get<std::string>().empty()) return rules;
  if (!j.is_array()) throw std::invalid_argument("stored health rules: not a list");
  for (const json& r : j) {
    const auto when = trainer_core::parse_name<HealthCondition>(r.value("when", std::string()));
    const auto action = trainer_core::parse_name<HealthAction>(r.value("do", std::string()));
    if (!when || !action || !r.contains("threshold") || !r["threshold"].is_number())
      throw std::invalid_argument("stored health rule: " + r.dump());
    HealthRule rule{*when, r["threshold"].get<double>(), *action, {}};
    if (rule.action == HealthAction::kRewind)
      rule.rewind = {r.value("lr_scale", 0.0), r.value("times", 0)};
    rules.push_back(rule);
  }
  return rules;
}

}  // namespace sweep_file
