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

const LeasedJob kJob{3, 17, 40, {}, std::nullopt};

TEST(JobConfig, ASweepMayAskForACheckpointCadenceWithoutADirectory) {
  const SweepPlan plan = plan_sweep(kSweep, "t.yaml", 10);
  ASSERT_TRUE(plan.problems.empty()) << plan.problems[0].to_string();
  EXPECT_EQ(plan.jobs[0].config["training"]["checkpoint_every"], 5);
  EXPECT_EQ(plan.jobs[0].config["training"]["checkpoint_dir"], "")
      << "the coordinator chooses the directory";
}

TEST(JobConfig, EveryJobCheckpointsInItsOwnDirectoryUnderTheRoot) {
  const SweepPlan plan = plan_sweep(kSweep, "t.yaml", 10);
  const auto with_cadence = job_time_config(plan.jobs[0].config.dump(), kJob, "/ckpt");
  EXPECT_EQ(with_cadence["training"]["checkpoint_dir"], "/ckpt/sweep-3/job-17");
  EXPECT_EQ(with_cadence["training"]["checkpoint_every"], 5) << "the sweep's cadence stands";
  nlohmann::json no_cadence = plan.jobs[0].config;
  no_cadence["training"]["checkpoint_every"] = 0;
  EXPECT_EQ(job_time_config(no_cadence.dump(), kJob, "/ckpt")["training"]["checkpoint_every"], 4)
      << "about every tenth of the run";
  // Without a root there is nowhere to write: no checkpoints.
  const auto no_root = job_time_config(plan.jobs[0].config.dump(), kJob, "");
  EXPECT_EQ(no_root["training"]["checkpoint_every"], 0);
  EXPECT_EQ(no_root["training"]["checkpoint_dir"], "");
}

TEST(JobConfig, AParentKeepsItsForksBranchStepsAndAForkStartsFromTheParentsKeptCheckpoint) {
  const SweepPlan plan = plan_sweep(kSweep, "t.yaml", 10);
  nlohmann::json asked = plan.jobs[0].config;
  asked["training"]["checkpoint_at_steps"] = {30, 10};
  const auto parent =
      job_time_config(asked.dump(), LeasedJob{3, 17, 40, {20, 10}, std::nullopt}, "/ckpt");
  EXPECT_EQ(parent["training"]["checkpoint_at_steps"], nlohmann::json({10, 20, 30}))
      << "the sweep's own kept steps and the pinned ones, once each, in order";
  const auto fork = job_time_config(plan.jobs[0].config.dump(),
                                    LeasedJob{3, 18, 40, {}, ForkSource{17, 20}}, "/ckpt");
  EXPECT_EQ(fork["training"]["fork_from"], "/ckpt/sweep-3/job-17/checkpoint-step-20.bin");
  EXPECT_EQ(fork["training"]["checkpoint_dir"], "/ckpt/sweep-3/job-18") << "its own directory";
  EXPECT_THROW(
      job_time_config(plan.jobs[0].config.dump(), LeasedJob{3, 18, 40, {}, ForkSource{17, 20}}, ""),
      std::invalid_argument)
      << "without a checkpoint root a fork would silently train from step 0";
}

}  // namespace
