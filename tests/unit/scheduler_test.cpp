#include "server/scheduling/scheduler.h"

#include <gtest/gtest.h>

using namespace server;

namespace {

PendingJob job(int64_t id, int64_t sweep, int index, int priority = 0, int max_conc = 0,
               const std::string& backend = "cpu", int gpus = 0, const std::string& owner = "") {
  return {id, sweep, index, priority, max_conc, backend, gpus, owner};
}

RunningJobs by_sweep(std::map<int64_t, int> counts) { return {std::move(counts), {}}; }

TEST(Scheduler, HigherPriorityFirstThenOlderSweepThenPosition) {
  const WorkerCapacity cpu{"cpu", 1, 0};
  EXPECT_EQ(pick_job({job(1, 1, 0), job(2, 2, 0, 5)}, {}, cpu)->job_id, 2);
  EXPECT_EQ(pick_job({job(3, 2, 0), job(1, 1, 1), job(2, 1, 0)}, {}, cpu)->job_id, 2);
}

TEST(Scheduler, RespectsMaxConcurrencyPerSweep) {
  const WorkerCapacity cpu{"cpu", 1, 0};
  const std::vector<PendingJob> pending = {job(1, 1, 0, 0, 2), job(2, 2, 0)};
  EXPECT_EQ(pick_job(pending, by_sweep({{1, 1}, {2, 1}}), cpu)->job_id, 1);
  EXPECT_EQ(pick_job(pending, by_sweep({{1, 2}}), cpu)->job_id, 2);  // sweep 1 is at its limit
  EXPECT_FALSE(pick_job({job(1, 1, 0, 0, 2)}, by_sweep({{1, 2}}), cpu));
}

TEST(Scheduler, MatchesBackendAndGpuCount) {
  const std::vector<PendingJob> pending = {job(1, 1, 0, 0, 0, "cuda", 4),
                                           job(2, 1, 1, 0, 0, "cuda", 1)};
  EXPECT_FALSE(pick_job(pending, {}, {"cpu", 4, 0}));           // CPU workers never take CUDA jobs
  EXPECT_EQ(pick_job(pending, {}, {"cuda", 1, 2})->job_id, 2);  // 4 GPUs do not fit on 2
  EXPECT_EQ(pick_job(pending, {}, {"cuda", 1, 8})->job_id, 1);
  EXPECT_FALSE(pick_job({job(3, 1, 0)}, {}, {"cuda", 1, 8}));  // nor CUDA workers CPU jobs
  EXPECT_FALSE(pick_job({job(3, 1, 0)}, {}, {"cpu", 0, 0}));   // no free slot
}

// Sweeps of equal priority share the workers: a late 10-job sweep gets its share as soon as slots
// free, instead of waiting for a 2,000-job sweep to drain.
TEST(Scheduler, SweepsOfEqualPriorityShareTheWorkers) {
  const WorkerCapacity cpu{"cpu", 1, 0};
  EXPECT_EQ(pick_job({job(1, 1, 7), job(2, 2, 0)}, by_sweep({{1, 3}}), cpu)->job_id, 2);
  // Priority still comes first: a busier high-priority sweep beats an idle low-priority one.
  EXPECT_EQ(pick_job({job(1, 1, 7, 5), job(2, 2, 0)}, by_sweep({{1, 3}}), cpu)->job_id, 1);
  // Four slots held by the big sweep; the small one arrives; each time one job of the big sweep
  // ends, the freed slot goes to the sweep with fewer running, until they hold two each.
  RunningJobs running = by_sweep({{1, 4}});
  for (int round = 0; round < 4; ++round) {
    --running.by_sweep[1];
    const auto next =
        pick_job({job(100 + round, 1, 4 + round), job(200 + round, 2, round)}, running, cpu);
    ++running.by_sweep[next->sweep_id];
  }
  EXPECT_EQ(running.by_sweep[1], 2);
  EXPECT_EQ(running.by_sweep[2], 2);
}

// Fair share between users first: alice's ten sweeps and bob's one get equal slots while both
// have work; alice's priority orders only her own sweeps.
TEST(Scheduler, UsersShareTheWorkersBeforeTheirSweepsDo) {
  const WorkerCapacity cpu{"cpu", 1, 0};
  RunningJobs running;
  std::vector<PendingJob> pending;
  for (int s = 1; s <= 10; ++s)
    pending.push_back(job(s, s, 0, /*priority=*/5, 0, "cpu", 0, "alice"));
  pending.push_back(job(100, 11, 0, 0, 0, "cpu", 0, "bob"));
  for (int slot = 0; slot < 8; ++slot) {
    const auto next = pick_job(pending, running, cpu);
    ASSERT_TRUE(next);
    ++running.by_owner[next->owner];
    ++running.by_sweep[next->sweep_id];
    // The picked job's sweep offers its next job (the store offers each sweep's first pending).
    for (PendingJob& j : pending)
      if (j.job_id == next->job_id)
        j = job(j.job_id + 1000, j.sweep_id, j.index + 1, j.priority, 0, "cpu", 0, j.owner);
  }
  EXPECT_EQ(running.by_owner["alice"], 4);
  EXPECT_EQ(running.by_owner["bob"], 4);
  // Alice's four went to four different sweeps of hers (fair share within her sweeps).
  int alice_sweeps = 0;
  for (int s = 1; s <= 10; ++s) alice_sweeps += running.by_sweep[s] > 0;
  EXPECT_EQ(alice_sweeps, 4);
}

TEST(Scheduler, APerUserCapHoldsAUsersJobsBack) {
  const WorkerCapacity cpu{"cpu", 1, 0};
  RunningJobs running;
  running.by_owner["alice"] = 3;
  EXPECT_FALSE(pick_job({job(1, 1, 0, 0, 0, "cpu", 0, "alice")}, running, cpu, 3));
  EXPECT_EQ(pick_job({job(1, 1, 0, 0, 0, "cpu", 0, "alice")}, running, cpu, 4)->job_id, 1);
  EXPECT_EQ(pick_job({job(1, 1, 0, 0, 0, "cpu", 0, "alice"), job(2, 2, 0, 0, 0, "cpu", 0, "bob")},
                     running, cpu, 3)
                ->job_id,
            2);
}

}  // namespace
