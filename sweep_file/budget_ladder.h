// Budget ladders: `budgets: {tokens: [...], via: cooldown | separate}` in a sweep file measures
// every row and seed at several token budgets, each fully annealed (docs/sweeps.md, "Budget
// ladders"). Each budget is one rung: the job's config with training.max_tokens set to it.
//   cooldown  one warmup-stable-decay run per row and seed to the largest budget (the trunk);
//             each smaller budget is a fork of the trunk at that budget's decay start (a kept
//             checkpoint) that decays over its own last decay_fraction. Costs the largest budget
//             plus the cooldowns, and each rung trains exactly the steps a separate run of that
//             budget and schedule would (bit-identical on CPU).
//   separate  one full run per budget with the base's own schedule: the reference.
// Every rung of a ladder has the same warm-up in steps (the base's, resolved at the largest budget
// when given as a fraction): a fork continues its trunk only if their schedules agree up to the
// branch step.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "trainer_core/config/train_config.h"

namespace sweep_file {

enum class LadderVia { kCooldown, kSeparate };

struct BudgetLadder {
  std::vector<int64_t> tokens;  // increasing, each > 0
  LadderVia via = LadderVia::kCooldown;
};

// The stored form (sweeps.budgets): {tokens: [...], via: "cooldown" | "separate"}; from_json
// throws std::invalid_argument on a value it did not write.
nlohmann::json to_json(const BudgetLadder& ladder);
BudgetLadder budget_ladder_from_json(const nlohmann::json& j);

// A job that starts from another job's kept checkpoint (a fork) and what it changes.
struct ForkPlan {
  int parent_index = 0;       // the parent's position in its sweep (ExpandedJob::index)
  int64_t branch_step = 0;    // the parent's step the fork starts from
  int64_t branch_tokens = 0;  // branch_step * batch_tokens
  nlohmann::json changes;     // {dotted path: the fork's value} where its config differs
};

// `budgets:` of the document; nullopt when absent or refused (its problems added).
std::optional<BudgetLadder> read_budget_ladder(const nlohmann::json& doc,
                                               std::vector<trainer_core::ConfigProblem>& problems);

// The configs of one row and seed's rungs, largest budget first (the trunk, for cooldown): the
// resolved `config` with training.max_tokens and max_steps at the budget, the ladder's warm-up in
// steps, and for cooldown schedule.kind wsd. Throws ConfigError (paths under `budgets`) when a
// budget is not a multiple of the batch or a cooldown would start inside the warm-up.
std::vector<trainer_core::TrainConfig> rung_configs(const trainer_core::TrainConfig& config,
                                                    const BudgetLadder& ladder);

// Where a cooldown rung branches off its trunk: its decay start (the step its lr first leaves the
// peak), as the trainer's schedule computes it for the rung's resolved config.
int64_t cooldown_branch_step(const trainer_core::TrainConfig& rung);

// The leaves where `fork` differs from `parent` ({dotted path: fork's value}); name and
// training.fork_from are not settings a fork changes and are left out.
nlohmann::json config_changes(const nlohmann::json& parent, const nlohmann::json& fork);

}  // namespace sweep_file
