// Health rules (sweep_file/health_spec.h) on a real coordinator, worker and trainer: a run whose
// val loss stops improving is stopped by its sweep's rule well before its budget, ends STOPPED
// with the rule as its message, and the firing is in the audit trail; a run of the same sweep
// that keeps improving runs to its end.
#include "orchestration_cluster.h"

namespace orchestration_test {
namespace {

TEST(Orchestration, AHealthRuleStopsARunThatNoLongerImprovesAndSaysWhy) {
  Cluster c("health");
  c.start_coordinator();
  c.start_worker("w1");
  // lr 1e-9 cannot move the val loss by 1e-4 of itself: no improvement after the first
  // evaluation, so the rule holds at the third (step 15 of a budget it would take minutes to
  // finish). The baseline, at lr 3e-3 for 40 steps, improves at every evaluation.
  const int64_t sweep = c.submit(R"(name: health
base:
  model: {preset: micro}
  optimizer: {lr: 3.0e-3}
  training: {max_steps: 40, batch_tokens: 256, micro_batch: 8, eval_every: 5, eval_tokens: 512}
  data: {corpus: gcide, max_corpus_bytes: 1000000, cache_dir: )" +
                                 c.cache() + R"(}
ablations:
  - {label: stalled, set: {optimizer.lr: 1.0e-9, training.max_steps: 20000}}
health:
  - {when: {no_val_improvement_evals: 2}, do: stop}
)");
  ASSERT_GT(sweep, 0);
  ASSERT_TRUE(c.wait_finished(sweep, 300s)) << c.diagnostics();
  const pb::GetSweepResponse s = c.get(sweep);
  ASSERT_EQ(s.jobs_size(), 2);
  for (const auto& j : s.jobs()) {
    if (j.label() == "stalled") {
      EXPECT_EQ(j.state(), pb::STOPPED) << j.message();
      // The count is what the coordinator had stored when it judged (a report may carry several
      // evaluations): 2 or more.
      EXPECT_NE(j.message().find("health rule no_val_improvement_evals 2: stop: no val-loss "
                                 "improvement in the last "),
                std::string::npos)
          << j.message();
      EXPECT_LT(j.step(), j.max_steps()) << "stopped before its budget";
    } else {
      EXPECT_EQ(j.state(), pb::SUCCEEDED) << j.label() << ": " << j.message();
    }
  }
  c.signal_coordinator(SIGTERM);
  ASSERT_TRUE(c.wait_coordinator_exit(20s));
  server::Database db(c.dir() + "/sweeps.db");
  server::Statement audit(db.handle(),
                          "SELECT COUNT(*), GROUP_CONCAT(detail, ' | ') FROM audit "
                          "WHERE action = 'health-stop'");
  ASSERT_TRUE(audit.step());
  EXPECT_EQ(audit.int64(0), 1) << audit.text(1);
  EXPECT_NE(audit.text(1).find("no_val_improvement_evals 2"), std::string::npos) << audit.text(1);
}

}  // namespace
}  // namespace orchestration_test
