#include "server/scheduling/scheduler.h"

#include <gtest/gtest.h>

using namespace server;

namespace {

PendingJob job(int64_t id, int64_t sweep, int index, int priority = 0, int max_conc = 0,
               const std::string& backend = "cpu", int gpus = 0) {
  return {id, sweep, index, priority, max_conc, backend, gpus};
}

TEST(Scheduler, HigherPriorityFirstThenOlderSweepThenPosition) {
  const WorkerCapacity cpu{"cpu", 1, 0};
  EXPECT_EQ(pick_job({job(1, 1, 0), job(2, 2, 0, 5)}, {}, cpu)->job_id, 2);
  EXPECT_EQ(pick_job({job(3, 2, 0), job(1, 1, 1), job(2, 1, 0)}, {}, cpu)->job_id, 2);
}

TEST(Scheduler, RespectsMaxConcurrencyPerSweep) {
  const WorkerCapacity cpu{"cpu", 1, 0};
  const std::vector<PendingJob> pending = {job(1, 1, 0, 0, 2), job(2, 2, 0)};
  EXPECT_EQ(pick_job(pending, {{1, 1}, {2, 1}}, cpu)->job_id, 1);
  EXPECT_EQ(pick_job(pending, {{1, 2}}, cpu)->job_id, 2);  // sweep 1 is at its limit
  EXPECT_FALSE(pick_job({job(1, 1, 0, 0, 2)}, {{1, 2}}, cpu));
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
  EXPECT_EQ(pick_job({job(1, 1, 7), job(2, 2, 0)}, {{1, 3}}, cpu)->job_id, 2);
  // Priority still comes first: a busier high-priority sweep beats an idle low-priority one.
  EXPECT_EQ(pick_job({job(1, 1, 7, 5), job(2, 2, 0)}, {{1, 3}}, cpu)->job_id, 1);
  // Four slots held by the big sweep; the small one arrives; each time one job of the big sweep
  // ends, the freed slot goes to the sweep with fewer running, until they hold two each.
  std::map<int64_t, int> running = {{1, 4}};
  for (int round = 0; round < 4; ++round) {
    --running[1];
    const auto next =
        pick_job({job(100 + round, 1, 4 + round), job(200 + round, 2, round)}, running, cpu);
    ++running[next->sweep_id];
  }
  EXPECT_EQ(running[1], 2);
  EXPECT_EQ(running[2], 2);
}

}  // namespace
