// The coordinator's job-time config policy, and the sweep file rule it allows: a checkpoint
// cadence without a directory.
#include "server/scheduling/job_config.h"

#include <gtest/gtest.h>

#include "sweep_file/sweep_spec.h"

using namespace server;
using namespace sweep_file;

namespace {

const char* kSweep = R"(
name: t
base:
  model: {preset: micro}
  training: {max_steps: 40, batch_tokens: 256, micro_batch: 8, checkpoint_every: 5}
)";

TEST(JobConfig, ASweepMayAskForACheckpointCadenceWithoutADirectory) {
  const SweepPlan plan = plan_sweep(kSweep, "t.yaml", 10);
  ASSERT_TRUE(plan.problems.empty()) << plan.problems[0].to_string();
  EXPECT_EQ(plan.jobs[0].config["training"]["checkpoint_every"], 5);
  EXPECT_EQ(plan.jobs[0].config["training"]["checkpoint_dir"], "")
      << "the coordinator chooses the directory";
}

TEST(JobConfig, EveryJobCheckpointsInItsOwnDirectoryUnderTheRoot) {
  const SweepPlan plan = plan_sweep(kSweep, "t.yaml", 10);
  const auto with_cadence = job_time_config(plan.jobs[0].config.dump(), 3, 17, 40, "/ckpt");
  EXPECT_EQ(with_cadence["training"]["checkpoint_dir"], "/ckpt/sweep-3/job-17");
  EXPECT_EQ(with_cadence["training"]["checkpoint_every"], 5) << "the sweep's cadence stands";
  nlohmann::json no_cadence = plan.jobs[0].config;
  no_cadence["training"]["checkpoint_every"] = 0;
  EXPECT_EQ(job_time_config(no_cadence.dump(), 3, 17, 40, "/ckpt")["training"]["checkpoint_every"],
            4)
      << "about every tenth of the run";
  // Without a root there is nowhere to write: no checkpoints.
  const auto no_root = job_time_config(plan.jobs[0].config.dump(), 3, 17, 40, "");
  EXPECT_EQ(no_root["training"]["checkpoint_every"], 0);
  EXPECT_EQ(no_root["training"]["checkpoint_dir"], "");
}

}  // namespace
