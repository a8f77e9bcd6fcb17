// An adaptive sweep through coordinator, workers and real training on the micro preset: the start
// grid misses every row's optimum, and the coordinator (killed once between a completion and the
// planning it called for) brackets each row and runs the paired confirmation seeds by itself.
#include <map>

#include "orchestration_cluster.h"

namespace orchestration_test {
namespace {

TEST(Orchestration, ATunedSweepBracketsEveryRowAndPairsItsConfirmationSeeds) {
  Cluster c("tuning");
  // The 4th completion is the last start-grid run: the coordinator dies right after storing it,
  // before planning that row's next value.
  c.start_coordinator(3000, {"--crash-after-completions", "4"});
  c.start_worker("w1");
  c.start_worker("w2");
  const int64_t sweep = c.submit(R"(name: tuned
base:
  model: {preset: micro}
  training: {max_steps: 30, batch_tokens: 256, micro_batch: 8, eval_every: 10, eval_tokens: 2048}
  data: {corpus: gcide, max_corpus_bytes: 1000000, cache_dir: )" +
                                 c.cache() + R"(}
grid:
  optimizer.name: [adamw, muon]
tune:
  start: [1.0e-4, 3.0e-4]
  factor: 3
  max_extensions: 8
  seeds: [1]
  confirm_seeds: [1, 2, 3]
targets: [5.0]
)");
  ASSERT_GT(sweep, 0);
  ASSERT_TRUE(c.wait_coordinator_exit(120s).has_value()) << c.diagnostics();
  c.start_coordinator();
  ASSERT_TRUE(c.wait_finished(sweep, 300s)) << c.diagnostics();

  const pb::GetSweepResponse s = c.get(sweep);
  EXPECT_TRUE(s.sweep().tuned());
  EXPECT_FALSE(s.sweep().planning_open());
  std::map<std::pair<std::string, int64_t>, int> runs;  // (label, seed) -> jobs
  int tuning = 0, extension = 0, confirmation = 0;
  for (const auto& j : s.jobs()) {
    const int copies = ++runs[std::make_pair(j.label(), j.seed())];
    EXPECT_EQ(copies, 1) << "planned twice: " << j.label() << " seed " << j.seed();
    EXPECT_FALSE(j.reason().empty()) << j.label();
    tuning += j.role() == pb::ROLE_TUNING;
    extension += j.role() == pb::ROLE_EXTENSION;
    confirmation += j.role() == pb::ROLE_CONFIRMATION;
  }
  EXPECT_EQ(confirmation, 2 * 2) << "seeds 2 and 3 in each of the two rows";
  EXPECT_EQ(tuning, 4) << "the start grid: 2 values in each of the two rows";
  EXPECT_GE(extension, 2) << "each row needed an extension beyond its start grid";

  const pb::GetResultsResponse r = c.results(sweep);
  ASSERT_EQ(r.ablation_size(), 2);
  for (const auto& row : r.ablation()) {
    EXPECT_TRUE(row.lr().tuned()) << row.label();
    EXPECT_FALSE(row.lr().at_grid_edge()) << row.label() << " chose " << row.lr().lr();
    EXPECT_GE(row.lr().extensions(), 1) << row.label();
    EXPECT_GT(row.lr().lr(), 3.0e-4) << row.label() << ": the optimum lies above the start grid";
    EXPECT_EQ(row.runs(), 3) << row.label();
    EXPECT_EQ(row.tuning_runs(), 1) << row.label();
    EXPECT_EQ(row.confirmation_runs(), 2) << row.label();
  }
  ASSERT_EQ(r.ratios_size(), 1);
  EXPECT_EQ(r.ratios(0).ratio().pairs(), 3) << r.ratios(0).ratio().note();
  EXPECT_DOUBLE_EQ(r.ratios(0).adamw_lr(), r.ablation(0).lr().lr());
}

}  // namespace
}  // namespace orchestration_test
