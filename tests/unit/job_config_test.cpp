// The coordinator's job-time config policy, and the sweep file rule it allows: a checkpoint
// cadence without a directory; where a fork by hand can start (fork_source.h) and the trainer's
// side of it (checkpoint_files.h's keep requests).
#include "server/scheduling/job_config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "scratch_dir.h"
#include "server/scheduling/fork_source.h"
#include "sweep_file/sweep_spec.h"
#include "trainer_core/train/checkpoint_files.h"

using namespace server;
using namespace sweep_file;

namespace {

const char* kSweep = R"(
name: t
base:
  model: {preset: micro}
  training: {max_steps: 40, batch_tokens: 256, micro_batch: 8, checkpoint_every: 5}
)";

const LeasedJob kJob{3, 17, 40, {}, std::nullopt, std::nullopt};

std::string test_read(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

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
  const auto parent = job_time_config(
      asked.dump(), LeasedJob{3, 17, 40, {20, 10}, std::nullopt, std::nullopt}, "/ckpt");
  EXPECT_EQ(parent["training"]["checkpoint_at_steps"], nlohmann::json({10, 20, 30}))
      << "the sweep's own kept steps and the pinned ones, once each, in order";
  const auto fork =
      job_time_config(plan.jobs[0].config.dump(),
                      LeasedJob{3, 18, 40, {}, ForkSource{3, 17, 20}, std::nullopt}, "/ckpt");
  EXPECT_EQ(fork["training"]["fork_from"], "/ckpt/sweep-3/job-17/checkpoint-step-20.bin");
  EXPECT_EQ(fork["training"]["checkpoint_dir"], "/ckpt/sweep-3/job-18") << "its own directory";
  EXPECT_THROW(job_time_config(plan.jobs[0].config.dump(),
                               LeasedJob{3, 18, 40, {}, ForkSource{3, 17, 20}, std::nullopt}, ""),
               std::invalid_argument)
      << "without a checkpoint root a fork would silently train from step 0";
}

// A sweep with a rewind rule: each job keeps every checkpoint of its cadence (by default a tenth
// of its steps), at most 200, beside its forks' branch steps, so a rewind has somewhere to start.
TEST(JobConfig, ARunUnderARewindRuleKeepsTheCheckpointsOfItsCadence) {
  EXPECT_EQ(rewind_points(40, 4), (std::vector<int64_t>{4, 8, 12, 16, 20, 24, 28, 32, 36}));
  EXPECT_EQ(rewind_points(25, 3), (std::vector<int64_t>{3, 6, 9, 12, 15, 18, 21, 24}));
  EXPECT_EQ(rewind_points(1, 1), std::vector<int64_t>{});
  EXPECT_EQ(rewind_points(100000, 1).size(), 199u) << "every 500 steps, not every one";
  EXPECT_EQ(rewind_points(100000, 1)[0], 500);
  const SweepPlan plan = plan_sweep(kSweep, "t.yaml", 10);
  LeasedJob job{3, 17, 40, {10}, std::nullopt, std::nullopt};
  job.keeps_rewind_points = true;  // the sweep's cadence: every 5 steps of 40
  const auto config = job_time_config(plan.jobs[0].config.dump(), job, "/ckpt");
  EXPECT_EQ(config["training"]["checkpoint_at_steps"], nlohmann::json({5, 10, 15, 20, 25, 30, 35}));
  job.keeps_rewind_points = false;
  EXPECT_EQ(
      job_time_config(plan.jobs[0].config.dump(), job, "/ckpt")["training"]["checkpoint_at_steps"],
      nlohmann::json({10}))
      << "only its forks' branch step without a rewind rule";
}

class ForkSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fresh_test_dir("fork_source");
    dir_ = job_checkpoint_dir(root_.string(), 3, 17);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  void write(const std::string& path, const std::string& text = "x") {
    std::ofstream(path) << text;
  }
  std::filesystem::path root_;
  std::string dir_;
};

TEST_F(ForkSourceTest, KeptStepsAreListedInOrderAndKeepRequestsMergeOnceEach) {
  for (int step : {40, 8, 120}) write(trainer_core::kept_checkpoint_path(dir_, step));
  write(dir_ + "/checkpoint-step-9.bin.tmp.77");  // half-written: not kept
  write(trainer_core::checkpoint_path(dir_));
  EXPECT_EQ(trainer_core::kept_checkpoint_steps(dir_), (std::vector<int64_t>{8, 40, 120}));
  EXPECT_TRUE(trainer_core::kept_checkpoint_steps(dir_ + "/absent").empty());

  trainer_core::KeepRequests trainer(dir_);
  EXPECT_FALSE(trainer.wants(50)) << "no requests yet";
  trainer_core::request_kept_checkpoint(dir_, 50);
  trainer_core::request_kept_checkpoint(dir_, 30);
  trainer_core::request_kept_checkpoint(dir_, 50);
  EXPECT_EQ(trainer_core::kept_checkpoint_requests(dir_), (std::vector<int64_t>{30, 50}));
  EXPECT_EQ(test_read(dir_ + "/keep-steps"), "30\n50\n") << "once each, in order";
  EXPECT_TRUE(trainer.wants(50)) << "the trainer sees a request made after it started";
  EXPECT_TRUE(trainer.wants(30));
  EXPECT_FALSE(trainer.wants(40));
}

TEST_F(ForkSourceTest, AForkStartsAtAKeptStepAFinishedRunsLastStepOrAStepAheadOfARunningParent) {
  write(trainer_core::kept_checkpoint_path(dir_, 20));
  const ForkParent succeeded{3, 17, ParentProgress::kSucceeded, 80, 512};
  EXPECT_EQ(prepare_fork_start(root_.string(), succeeded, 20), "") << "kept";
  EXPECT_EQ(prepare_fork_start(root_.string(), succeeded, 80),
            "job 17 keeps no checkpoint at step 80 (40960 tokens); its nearest kept: step 20 "
            "(10240 tokens)")
      << "a finished run without its latest checkpoint has only what it kept";
  write(trainer_core::checkpoint_path(dir_), "the last step's state");
  EXPECT_EQ(prepare_fork_start(root_.string(), succeeded, 80), "");
  EXPECT_EQ(test_read(trainer_core::kept_checkpoint_path(dir_, 80)), "the last step's state")
      << "the last checkpoint is kept under its step from now on";
  EXPECT_EQ(prepare_fork_start(root_.string(), succeeded, 50),
            "job 17 keeps no checkpoint at step 50 (25600 tokens); its nearest kept: step 20 "
            "(10240 tokens) and step 80 (40960 tokens)");

  const ForkParent running{3, 17, ParentProgress::kNotEnded, 30, 512};
  EXPECT_EQ(prepare_fork_start(root_.string(), running, 60), "") << "ahead of it: asked for";
  EXPECT_EQ(trainer_core::kept_checkpoint_requests(dir_), std::vector<int64_t>{60});
  EXPECT_EQ(prepare_fork_start(root_.string(), running, 25),
            "job 17 keeps no checkpoint at step 25 (12800 tokens); its nearest kept: step 20 "
            "(10240 tokens) and step 80 (40960 tokens); it is at step 30, so a later step can be "
            "asked of it");
  const ForkParent failed{3, 17, ParentProgress::kEndedOtherwise, 70, 512};
  EXPECT_NE(prepare_fork_start(root_.string(), failed, 75), "")
      << "an ended run keeps nothing more";

  // At lease time: the fork of a parent that passed the step before keeping it cannot start.
  const LeasedJob fork{3, 18, 100, {}, ForkSource{3, 17, 60}, std::nullopt};
  EXPECT_EQ(missing_fork_checkpoint(root_.string(), fork, 512)
                .find("its parent's checkpoint is "
                      "missing"),
            0u);
  write(trainer_core::kept_checkpoint_path(dir_, 60));
  EXPECT_EQ(missing_fork_checkpoint(root_.string(), fork, 512), "");
}

}  // namespace
