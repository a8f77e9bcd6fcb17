#include "sweep_file/budget_ladder.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "trainer_core/config/json_reader.h"

namespace sweep_file {

using nlohmann::json;
using trainer_core::ConfigError;
using trainer_core::ConfigProblem;
using trainer_core::TrainConfig;

namespace {
// A ladder's rungs at most: each is a job per row and seed.
constexpr size_t kMaxRungs = 32;

std::string tokens_path(size_t i) { return "budgets.tokens[" + std::to_string(i) + "]"; }
}  // namespace

std::optional<BudgetLadder> read_budget_ladder(const json& doc,
                                               std::vector<ConfigProblem>& problems) {
  if (!doc.is_object() || !doc.contains("budgets")) return std::nullopt;
  if (!doc["budgets"].is_object()) {
    problems.push_back({"budgets", "must be a map: {tokens: [...], via: cooldown | separate}"});
    return std::nullopt;
  }
  const size_t before = problems.size();
  BudgetLadder ladder;
  trainer_core::JsonReader r(doc["budgets"], "budgets", problems);
  std::string via = "cooldown";
  r.read("tokens", ladder.tokens);
  r.read("via", via);
  r.finish();
  if (via == "separate")
    ladder.via = LadderVia::kSeparate;
  else if (via != "cooldown")
    problems.push_back({"budgets.via", "must be one of cooldown, separate, got '" + via + "'"});
  if (ladder.tokens.size() < 2 || ladder.tokens.size() > kMaxRungs)
    problems.push_back({"budgets.tokens", "must list 2 to " + std::to_string(kMaxRungs) +
                                              " token budgets, got " +
                                              std::to_string(ladder.tokens.size())});
  for (size_t i = 0; i < ladder.tokens.size(); ++i)
    if (ladder.tokens[i] <= 0 || (i > 0 && ladder.tokens[i] <= ladder.tokens[i - 1]))
      problems.push_back({tokens_path(i), "budgets must be positive and increasing"});
  if (problems.size() != before) return std::nullopt;
  return ladder;
}

json to_json(const BudgetLadder& ladder) {
  return {{"tokens", ladder.tokens},
          {"via", ladder.via == LadderVia::kCooldown ? "cooldown" : "separate"}};
}

BudgetLadder budget_ladder_from_json(const json& j) {
  BudgetLadder ladder;
  try {
    ladder.tokens = j.at("tokens").get<std::vector<int64_t>>();
    const std::string via = j.at("via").get<std::string>();
    if (via != "cooldown" && via != "separate") throw std::invalid_argument(via);
    ladder.via = via == "cooldown" ? LadderVia::kCooldown : LadderVia::kSeparate;
  } catch (const std::exception& e) {
    throw std::invalid_argument("stored budgets " + j.dump() + ": " + e.what());
  }
  return ladder;
}

int64_t cooldown_branch_step(const TrainConfig& rung) {
  return rung.training.max_steps - rung.decay_steps();
}

std::vector<TrainConfig> rung_configs(const TrainConfig& config, const BudgetLadder& ladder) {
  std::vector<ConfigProblem> problems;
  const int64_t batch = config.training.batch_tokens;
  std::vector<TrainConfig> rungs;
  for (size_t i = 0; i < ladder.tokens.size(); ++i) {
    if (ladder.tokens[i] % batch != 0 || ladder.tokens[i] / batch > INT32_MAX) {
      problems.push_back({tokens_path(i), "must be a multiple of training.batch_tokens (" +
                                              std::to_string(batch) + ") below 2^31 steps"});
      continue;
    }
    TrainConfig rung = config;
    rung.training.max_tokens = ladder.tokens[i];
    rung.training.max_steps = int(ladder.tokens[i] / batch);
    if (ladder.via == LadderVia::kCooldown) rung.schedule.kind = trainer_core::ScheduleKind::kWsd;
    rungs.push_back(rung);
  }
  if (!problems.empty()) throw ConfigError(std::move(problems));
  // One warm-up in steps for every rung: the largest rung's (the trunk's), when given as a
  // fraction of the run.
  const int warmup = rungs.back().warmup_steps();
  for (TrainConfig& rung : rungs) rung.schedule.warmup_steps = warmup;
  if (ladder.via == LadderVia::kCooldown)
    for (size_t i = 0; i + 1 < rungs.size(); ++i)
      if (cooldown_branch_step(rungs[i]) < warmup)
        problems.push_back({tokens_path(i), "its cooldown would start at step " +
                                                std::to_string(cooldown_branch_step(rungs[i])) +
                                                ", inside the warm-up of " +
                                                std::to_string(warmup) + " steps"});
  if (!problems.empty()) throw ConfigError(std::move(problems));
  std::rotate(rungs.begin(), rungs.end() - 1, rungs.end());  // the largest (the trunk) first
  return rungs;
}

json config_changes(const json& parent, const json& fork) {
  json changes = json::object();
  for (const json& op : json::diff(parent, fork)) {
    std::string path = op["path"].get<std::string>().substr(1);
    std::replace(path.begin(), path.end(), '/', '.');
    if (path == "name" || path == "training.fork_from") continue;
    changes[path] = op.value("value", json());  // a removed leaf: null
  }
  return changes;
}

}  // namespace sweep_file
