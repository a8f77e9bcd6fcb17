// Health rules: the sweep file's `health:` section (sweep_file/health_spec.h), refused with its
// path where it is wrong, stored and read back; and the judge (server/tuning/health.h) on the
// curves a run stored: each rule holds exactly where its docs say.
#include "server/tuning/health.h"

#include <gtest/gtest.h>

#include "sweep_file/sweep_spec.h"

namespace {

using server::EvalRow;
using server::judge_health;
using sweep_file::HealthCondition;
using sweep_file::HealthRule;

const std::string kBase =
    "name: h\nbase: {model: {preset: micro}, training: {max_steps: 10, batch_tokens: 256, "
    "micro_batch: 8}}\n";

std::string problems_of(const std::string& health) {
  std::string out;
  for (const auto& p : sweep_file::plan_sweep(kBase + health, "s.yaml", 100).problems)
    out += p.to_string() + "\n";
  return out;
}

TEST(HealthRules, AreReadTypedStoredAndRefusedWithTheirPath) {
  const sweep_file::SweepPlan p =
      sweep_file::plan_sweep(kBase +
                                 "health:\n  - {when: {loss_spikes_over: 3}, do: stop}\n"
                                 "  - {when: {no_val_improvement_evals: 5}, do: stop}\n"
                                 "  - {when: {loss_spikes_over: 1}, do: notify}\n",
                             "s.yaml", 100);
  ASSERT_TRUE(p.problems.empty()) << p.problems[0].to_string();
  ASSERT_EQ(p.health.size(), 3u);
  EXPECT_EQ(p.health[2].action, sweep_file::HealthAction::kNotify);
  EXPECT_EQ(p.health[0], (HealthRule{HealthCondition::kLossSpikesOver, 3}));
  EXPECT_EQ(p.health[1], (HealthRule{HealthCondition::kNoValImprovementEvals, 5}));
  EXPECT_EQ(sweep_file::health_rules_from_json(sweep_file::to_json(p.health)), p.health);
  EXPECT_TRUE(sweep_file::health_rules_from_json(nlohmann::json("")).empty());

  EXPECT_NE(problems_of("health: [{when: {loss_spike: 3}, do: stop}]\n")
                .find("health[0].when.loss_spike: unknown condition"),
            std::string::npos);
  EXPECT_NE(problems_of("health: [{when: {loss_spikes_over: 3}, do: page}]\n").find("health[0].do"),
            std::string::npos);
  EXPECT_NE(problems_of("health: [{when: {no_val_improvement_evals: 0}, do: stop}]\n")
                .find("health[0].when.no_val_improvement_evals: must be an integer between 1"),
            std::string::npos);
  EXPECT_NE(problems_of("health: [{when: diverged, do: stop}]\n")
                .find("health[0].when: diverged is not judged in this release"),
            std::string::npos);
  EXPECT_NE(problems_of("health: [{when: {tokens_per_second_below_row_median: 0.5}, do: stop}]\n")
                .find("is not judged in this release"),
            std::string::npos);
  EXPECT_NE(problems_of("health: {when: {loss_spikes_over: 3}, do: stop}\n")
                .find("health: must be a list"),
            std::string::npos);
  EXPECT_NE(problems_of("health: [{when: {loss_spikes_over: 3}, do: stop, extra: 1}]\n")
                .find("health[0].extra"),
            std::string::npos);
}

EvalRow eval(int64_t step, double loss) { return {step, loss, double(step) * 256}; }

TEST(HealthRules, EachConditionHoldsExactlyWhereItsDocsSay) {
  const std::vector<HealthRule> spikes = {{HealthCondition::kLossSpikesOver, 3}};
  EXPECT_TRUE(judge_health(spikes, 3, {}).empty()) << "over 3 means 4 or more";
  const auto fired = judge_health(spikes, 4, {});
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].reason, "health rule loss_spikes_over 3: stop: 4 loss-spike events");

  const std::vector<HealthRule> stall = {{HealthCondition::kNoValImprovementEvals, 2}};
  const auto holds = [&](const std::vector<EvalRow>& evals) {
    return !judge_health(stall, 0, evals).empty();
  };
  // The first evaluation sets the best; two more without bettering it by 1e-4 of it hold.
  EXPECT_FALSE(holds({eval(5, 3.0), eval(10, 2.9999)}));
  EXPECT_TRUE(holds({eval(5, 3.0), eval(10, 2.9999), eval(15, 3.1)}));
  // An improvement resets the count; a NaN never improves.
  EXPECT_FALSE(holds({eval(5, 3.0), eval(10, 3.1), eval(15, 2.9)}));
  EXPECT_TRUE(holds({eval(5, 3.0), eval(10, std::nan("")), eval(15, 3.0)}));
  // Every rule that holds is reported, in the rules' order, with its place (a notify rule and a
  // stop rule on the same condition both act).
  const HealthRule tell{HealthCondition::kLossSpikesOver, 3, sweep_file::HealthAction::kNotify};
  const std::vector<HealthRule> rules = {stall[0], spikes[0], tell};
  const auto all = judge_health(rules, 9, {eval(5, 3.0)});
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].rule_index, 1u);
  EXPECT_EQ(all[1].rule_index, 2u);
  EXPECT_EQ(all[1].reason, "health rule loss_spikes_over 3: notify: 9 loss-spike events");
}

}  // namespace
