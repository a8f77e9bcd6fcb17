// Health rules: the sweep file's `health:` section (sweep_file/health_spec.h), refused with its
// path where it is wrong (and for the jobs whose trainer does not record what a rule reads),
// stored and read back; and the judge (server/tuning/health.h) on the curves a run stored: each
// rule holds exactly where its docs say, with the step a rewind would start before.
#include "server/tuning/health.h"

#include <gtest/gtest.h>

#include "sweep_file/sweep_spec.h"

namespace {

using server::EvalRow;
using server::judge_health;
using sweep_file::HealthCondition;
using sweep_file::HealthRule;

// Evaluations at every step: 11, enough for any rule below.
const std::string kBase =
    "name: h\nbase: {model: {preset: micro}, training: {max_steps: 10, batch_tokens: 256, "
    "micro_batch: 8, eval_every: 1}}\n";

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
  EXPECT_EQ(p.health[0],
            (HealthRule{HealthCondition::kLossSpikesOver, 3, sweep_file::HealthAction::kStop, {}}));
  EXPECT_EQ(p.health[1],
            (HealthRule{
                HealthCondition::kNoValImprovementEvals, 5, sweep_file::HealthAction::kStop, {}}));
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
                .find("health[0].do: a diverged run has already ended (DIVERGED)"),
            std::string::npos);
  EXPECT_NE(problems_of("health: [{when: {diverged: 1}, do: notify}]\n")
                .find("health[0].when.diverged: takes no threshold"),
            std::string::npos);
  EXPECT_NE(problems_of("health: [{when: {tokens_per_second_below_row_median: 1.5}, do: stop}]\n")
                .find("health[0].when.tokens_per_second_below_row_median: must be a share"),
            std::string::npos);
  EXPECT_NE(problems_of("health: [{when: {tokens_per_second_below_row_median: 0.5}, do: "
                        "{rewind: {lr_scale: 0.5, times: 1}}}]\n")
                .find("health[0].do: a slow run is not helped by a lower lr"),
            std::string::npos);
  EXPECT_NE(problems_of("health: [{when: diverged, do: rewind}]\n")
                .find("health[0].do: rewind needs its factor and limit"),
            std::string::npos);
  EXPECT_NE(problems_of("health: [{when: diverged, do: {rewind: {lr_scale: 2, times: 1}}}]\n")
                .find("health[0].do.rewind.lr_scale: must be between 0 and 1"),
            std::string::npos);
  EXPECT_NE(problems_of("health: [{when: diverged, do: {rewind: {lr_scale: 0.5, times: 9}}}]\n")
                .find("health[0].do.rewind.times: must be between 1 and 8"),
            std::string::npos);
  EXPECT_NE(problems_of("health: [{when: diverged, do: {rewind: {lr_scale: 0.5, times: 1, "
                        "at: 3}}}]\n")
                .find("health[0].do.rewind.at"),
            std::string::npos);
  EXPECT_NE(problems_of("health: {when: {loss_spikes_over: 3}, do: stop}\n")
                .find("health: must be a list"),
            std::string::npos);
  EXPECT_NE(problems_of("health: [{when: {loss_spikes_over: 3}, do: stop, extra: 1}]\n")
                .find("health[0].extra"),
            std::string::npos);
}

TEST(HealthRules, NewConditionsAndRewindsAreReadAndStored) {
  const sweep_file::SweepPlan p = sweep_file::plan_sweep(
      kBase +
          "health:\n  - {when: {tokens_per_second_below_row_median: 0.5}, do: notify}\n"
          "  - {when: diverged, do: {rewind: {lr_scale: 0.25, times: 2}}}\n",
      "s.yaml", 100);
  ASSERT_TRUE(p.problems.empty()) << p.problems[0].to_string();
  ASSERT_EQ(p.health.size(), 2u);
  EXPECT_EQ(p.health[0], (HealthRule{HealthCondition::kTokensPerSecondBelowRowMedian,
                                     0.5,
                                     sweep_file::HealthAction::kNotify,
                                     {}}));
  EXPECT_EQ(
      p.health[1],
      (HealthRule{HealthCondition::kDiverged, 0, sweep_file::HealthAction::kRewind, {0.25, 2}}));
  EXPECT_EQ(sweep_file::health_rules_from_json(sweep_file::to_json(p.health)), p.health);
  EXPECT_EQ(sweep_file::describe(p.health[0]), "tokens_per_second_below_row_median 0.5: notify");
  EXPECT_EQ(sweep_file::describe(p.health[1]), "diverged: rewind (lr x0.25, at most 2)");
  // A rewound run has no place in a tuned sweep's or a ladder's planning yet.
  EXPECT_NE(problems_of("tune: {start: [1.0e-3, 2.0e-3]}\n"
                        "health: [{when: diverged, do: {rewind: {lr_scale: 0.5, times: 1}}}]\n")
                .find("health: a tuned sweep (tune:) cannot rewind yet"),
            std::string::npos);
}

// A rule on what a job's trainer does not record is refused for that job, by its label.
TEST(HealthRules, ARuleAJobCannotBeJudgedByIsRefusedForThatJob) {
  // max_steps 10 at the default eval_every (50): evaluations at steps 0 and 10 only.
  const auto rarely = [](const std::string& health) {
    std::string out;
    for (const auto& p : sweep_file::plan_sweep("name: h\nbase: {model: {preset: micro}, "
                                                "training: {max_steps: 10, batch_tokens: 256, "
                                                "micro_batch: 8}}\n" +
                                                    health,
                                                "s.yaml", 100)
                             .problems)
      out += p.to_string() + "\n";
    return out;
  };
  EXPECT_NE(rarely("health: [{when: {no_val_improvement_evals: 2}, do: stop}]\n")
                .find("health[0].when: can never hold for job baseline: it evaluates 2 times, "
                      "and the rule needs 3"),
            std::string::npos);
  EXPECT_EQ(rarely("health: [{when: {no_val_improvement_evals: 1}, do: stop}]\n"), "");
  const auto often = sweep_file::plan_sweep(
      "name: h\nbase: {model: {preset: micro}, training: {max_steps: 10, batch_tokens: 256, "
      "micro_batch: 8, eval_every: 2}}\nhealth: [{when: {no_val_improvement_evals: 5}, do: "
      "stop}]\n",
      "s.yaml", 100);
  EXPECT_TRUE(often.problems.empty()) << "0, 2, 4, 6, 8, 10: six evaluations";
  const std::string own_command =
      "ablations:\n  - {label: mine, set: {command: [python3, x.py], optimizer: {name: sgd, lr: "
      "1.0}}}\n";
  EXPECT_NE(problems_of(own_command + "health: [{when: {loss_spikes_over: 2}, do: stop}]\n")
                .find("health[0].when: can never hold for job mine: it runs its own command, "
                      "which need not flag loss spikes"),
            std::string::npos);
  EXPECT_NE(problems_of(own_command +
                        "health: [{when: {tokens_per_second_below_row_median: 0.5}, do: stop}]\n")
                .find("need not time its training"),
            std::string::npos);
  EXPECT_EQ(problems_of(own_command + "health: [{when: diverged, do: notify}]\n"), "");
}

EvalRow eval(int64_t step, double loss) { return {step, loss, double(step) * 256}; }

server::RunHealth spikes_at(std::vector<int64_t> starts) {
  server::RunHealth run;
  run.spike_starts = std::move(starts);
  return run;
}

server::RunHealth evals_of(std::vector<EvalRow> evals) {
  server::RunHealth run;
  run.evals = std::move(evals);
  return run;
}

TEST(HealthRules, EachConditionHoldsExactlyWhereItsDocsSay) {
  const std::vector<HealthRule> spikes = {
      {HealthCondition::kLossSpikesOver, 3, sweep_file::HealthAction::kStop, {}}};
  EXPECT_TRUE(judge_health(spikes, spikes_at({5, 9, 20})).empty()) << "over 3 means 4 or more";
  const auto fired = judge_health(spikes, spikes_at({5, 9, 20, 31, 40}));
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].reason, "health rule loss_spikes_over 3: stop: 5 loss-spike events");
  EXPECT_EQ(fired[0].trouble_step, 30) << "the step before the fourth event began";

  const std::vector<HealthRule> stall = {
      {HealthCondition::kNoValImprovementEvals, 2, sweep_file::HealthAction::kStop, {}}};
  const auto holds = [&](const std::vector<EvalRow>& evals) {
    return !judge_health(stall, evals_of(evals)).empty();
  };
  // The first evaluation sets the best; two more without bettering it by 1e-4 of it hold.
  EXPECT_FALSE(holds({eval(5, 3.0), eval(10, 2.9999)}));
  EXPECT_TRUE(holds({eval(5, 3.0), eval(10, 2.9999), eval(15, 3.1)}));
  // An improvement resets the count; a NaN never improves.
  EXPECT_FALSE(holds({eval(5, 3.0), eval(10, 3.1), eval(15, 2.9)}));
  EXPECT_TRUE(holds({eval(5, 3.0), eval(10, std::nan("")), eval(15, 3.0)}));
  const auto stalled =
      judge_health(stall, evals_of({eval(5, 3.1), eval(10, 3.0), eval(15, 3.0), eval(20, 3.05)}));
  ASSERT_EQ(stalled.size(), 1u);
  EXPECT_EQ(stalled[0].trouble_step, 10) << "a rewind starts at or before the best evaluation";
  // Every rule that holds is reported, in the rules' order, with its place (a notify rule and a
  // stop rule on the same condition both act).
  const HealthRule tell{HealthCondition::kLossSpikesOver, 3, sweep_file::HealthAction::kNotify, {}};
  const std::vector<HealthRule> rules = {stall[0], spikes[0], tell};
  server::RunHealth both = spikes_at({1, 3, 5, 7, 9, 11, 13, 15, 17});
  both.evals = {eval(5, 3.0)};
  const auto all = judge_health(rules, both);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].rule_index, 1u);
  EXPECT_EQ(all[1].rule_index, 2u);
  EXPECT_EQ(all[1].reason, "health rule loss_spikes_over 3: notify: 9 loss-spike events");
}

EvalRow timed(int64_t step, double tokens, double train_s) {
  return {step, 3.0, tokens, train_s, train_s};
}

TEST(HealthRules, PaceIsReadBetweenTimedEvaluationsAndJudgedAgainstTheRowMedian) {
  // Tokens per training second between the last two timed evaluations: the untimed one between
  // is skipped, and the first interval (start-up, the first evaluation) does not count.
  EXPECT_FALSE(server::pace_of({timed(0, 0, 0)}));
  EXPECT_DOUBLE_EQ(*server::pace_of({timed(0, 0, 0), timed(10, 1000, 1),
                                     timed(20, 2000, server::kUnknownSeconds), timed(30, 3000, 5)}),
                   500.0);

  const std::vector<HealthRule> slow = {{HealthCondition::kTokensPerSecondBelowRowMedian,
                                         0.5,
                                         sweep_file::HealthAction::kNotify,
                                         {}}};
  server::RunHealth run = evals_of({timed(0, 0, 0), timed(10, 1000, 10)});  // 100 tokens/s
  run.row_paces = {210};
  EXPECT_TRUE(judge_health(slow, run).empty()) << "one other run is no median";
  run.row_paces = {210, 190, 600};  // median 210: 100 < 105
  const auto fired = judge_health(slow, run);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].reason,
            "health rule tokens_per_second_below_row_median 0.5: notify: 100 tokens/s against its "
            "row's median 210 over 3 other runs");
  run.row_paces = {190, 200};  // median 195: 100 >= 97.5
  EXPECT_TRUE(judge_health(slow, run).empty());
}

TEST(HealthRules, DivergedHoldsOnlyForARunThatEndedSoAndOnlyItHoldsThen) {
  const std::vector<HealthRule> rules = {
      {HealthCondition::kDiverged, 0, sweep_file::HealthAction::kNotify, {}},
      {HealthCondition::kLossSpikesOver, 0, sweep_file::HealthAction::kNotify, {}}};
  server::RunHealth run = spikes_at({4});
  run.last_step = 12;
  const auto running = judge_health(rules, run);
  ASSERT_EQ(running.size(), 1u);
  EXPECT_EQ(running[0].rule_index, 1u);
  run.diverged = true;
  const auto ended = judge_health(rules, run);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].reason, "health rule diverged: notify: diverged at step 12");
  EXPECT_EQ(ended[0].trouble_step, 11);
}

}  // namespace
