// Reuse of finished runs: the trainer's check of an offer (trainer_core/train/reuse.h) and the
// coordinator's store of it (server/storage/reuse_rows.h) on a real SQLite file: which finished
// runs a job is offered, what taking one records, and that its curve reads through the run.
#include "trainer_core/train/reuse.h"

#include <gtest/gtest.h>

#include "server/storage/store.h"
#include "step_points.h"
#include "store_with_worker.h"
#include "sweep_file/sweep_spec.h"
#include "trainer_core/train/run_records.h"

using namespace server;
using namespace sweep_file;

namespace {

const trainer_core::TrainerIdentity kTrainer{std::string(40, 'a'), false, std::string(64, 'b')};
const trainer_core::DatasetProvenance kData{"d5e7", "gcide (byte)", "last 0.005", ""};

trainer_core::ReusableRunConfig offer_of(int64_t job) {
  return {job, kData.id, kTrainer.commit, kTrainer.dirty, kTrainer.binary_sha256};
}

TEST(ReuseOffer, IsTakenOnlyForTheSameDataAndTheSameTrainerBinary) {
  EXPECT_TRUE(trainer_core::reuse_mismatches(offer_of(7), kData, kTrainer).empty());

  trainer_core::DatasetProvenance other_data = kData;
  other_data.id = "f00d";
  const auto data = trainer_core::reuse_mismatches(offer_of(7), other_data, kTrainer);
  ASSERT_EQ(data.size(), 1u);
  EXPECT_EQ(data[0], "the dataset differs: job 7 trained on d5e7, this run loads f00d");
  trainer_core::DatasetProvenance unnamed = kData;
  unnamed.id = "";
  trainer_core::ReusableRunConfig unnamed_offer = offer_of(7);
  unnamed_offer.dataset_id = "";
  EXPECT_EQ(trainer_core::reuse_mismatches(unnamed_offer, unnamed, kTrainer).size(), 1u)
      << "data without an id (shards without a manifest) is never matched";

  trainer_core::TrainerIdentity rebuilt = kTrainer;
  rebuilt.binary_sha256 = std::string(64, 'c');
  const auto binary = trainer_core::reuse_mismatches(offer_of(7), kData, rebuilt);
  ASSERT_EQ(binary.size(), 1u) << "same commit, other compiler or flags";
  EXPECT_EQ(binary[0].find("the trainer binary differs"), 0u) << binary[0];
  trainer_core::TrainerIdentity dirty = kTrainer;
  dirty.dirty = true;
  EXPECT_EQ(trainer_core::reuse_mismatches(offer_of(7), kData, dirty).size(), 1u);
  trainer_core::TrainerIdentity unhashed = kTrainer;
  unhashed.binary_sha256 = "";
  trainer_core::ReusableRunConfig unhashed_offer = offer_of(7);
  unhashed_offer.trainer_binary_sha256 = "";
  EXPECT_EQ(trainer_core::reuse_mismatches(unhashed_offer, kData, unhashed).size(), 1u)
      << "a binary that could not be hashed is never matched";
  EXPECT_FALSE(trainer_core::reuse_mismatches(offer_of(0), kData, kTrainer).empty());

  const trainer_core::RunSummary taken =
      trainer_core::reused_run_summary(offer_of(7), kData, kTrainer);
  EXPECT_EQ(taken.reused_from_job, 7);
  EXPECT_EQ(taken.steps_completed, 0);
  EXPECT_EQ(taken.outcome, trainer_core::RunOutcome::kSucceeded);
  EXPECT_EQ(trainer_core::summary_from_json(trainer_core::to_json(taken)).reused_from_job, 7)
      << "the run record carries it";
}

TEST(ReuseOffer, ASweepFileCannotMakeAnOfferItself) {
  const SweepPlan plan = plan_sweep(
      "name: t\nbase: {model: {preset: micro}, training: {max_steps: 4}, reusable_run: {job: 3}}\n",
      "t.yaml", 10);
  ASSERT_EQ(plan.problems.size(), 1u);
  EXPECT_EQ(plan.problems[0].to_string(),
            "jobs[baseline/seed=1].reusable_run.job: is the coordinator's to offer at lease time; "
            "a sweep asks for reuse with reuse: true");
}

class ReuseStoreTest : public StoreWithWorker {
 protected:
  ReuseStoreTest() : StoreWithWorker("reuse_test") {}
  // A 40-step trunk and, for each of `forks`' (label, step), a fork lowering its lr from there:
  // every fork has the same config, only its branch step differs.
  int64_t submit(const std::vector<std::pair<std::string, int>>& forks, bool reuse) {
    std::string spec =
        "name: t\nbase: {model: {preset: micro}, training: {max_steps: 40, batch_tokens: 256, "
        "micro_batch: 8, eval_every: 10}}\nmax_attempts: 1\n";
    if (!forks.empty()) spec += "forks:\n";
    for (const auto& [label, step] : forks)
      spec += "  - {from: baseline, at_tokens: " + std::to_string(step * 256) +
              ", label: " + label + ", set: {optimizer.lr: 5.0e-4}}\n";
    if (reuse) spec += "reuse: true\n";
    const SweepPlan plan = plan_sweep(spec, "t.yaml", 100);
    EXPECT_TRUE(plan.problems.empty()) << plan.problems[0].to_string();
    return store_->sweeps.create_sweep(plan, spec, 1000);
  }
  JobRow acquire(int64_t expected_id) {
    const auto job = store_->workers.acquire_job("w", {"cpu", 4, 0}, now_ms_ += 100, 60000);
    EXPECT_TRUE(job);
    EXPECT_EQ(job->id, expected_id);
    return *job;
  }
  // Leases the job, reports steps first..40 and completes it with a summary naming `data`.
  void train(int64_t job_id, int64_t first, const std::string& data = kData.id) {
    const JobRow job = acquire(job_id);
    std::vector<orchestrator::v1::MetricPoint> points;
    for (int64_t s = first; s <= 40; ++s)
      points.push_back(step_point(s, 3.0 - 0.01 * s - 0.001 * double(job_id)));
    ASSERT_EQ(store_->metrics.store_metrics({job.id, job.attempt}, step_series(points),
                                            {{40, 2.5, 40.0 * 256}}, first - 1, now_ms_),
              Fence::kOk);
    trainer_core::RunSummary s;
    s.steps_completed = 40;
    s.final_val_loss = 2.5;
    s.dataset_id = data;
    s.trainer_commit = kTrainer.commit;
    s.trainer_binary_sha256 = kTrainer.binary_sha256;
    ASSERT_EQ(store_->workers.complete_job({job.id, job.attempt}, JobState::kSucceeded, "",
                                           trainer_core::to_json(s).dump(), now_ms_),
              Fence::kOk);
  }
  // (step, train loss) of a job's curve as the API reads it.
  std::vector<std::pair<int64_t, double>> curve(int64_t job_id) {
    std::vector<std::pair<int64_t, double>> out;
    for (const SeriesPoint& p : store_->metrics.series_points(job_id, "train_loss"))
      out.push_back({p.step, p.value});
    return out;
  }
  std::vector<int64_t> candidates(int64_t job_id) {
    std::vector<int64_t> ids;
    for (const ReuseCandidate& c : store_->workers.reuse_candidates(job_id))
      ids.push_back(c.run.job_id);
    return ids;
  }
  int64_t now_ms_ = 2000;
};

TEST_F(ReuseStoreTest, AJobIsOfferedFinishedRunsOfItsLineageAndTakingOneReadsThroughIt) {
  const int64_t first = submit({{"early", 10}, {"late", 20}}, false);
  const std::vector<JobRow> a = store_->sweeps.jobs(first);  // trunk, early, late
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[1].config_hash, a[2].config_hash) << "the forks differ only in their branch step";
  train(a[0].id, 1);
  train(a[1].id, 11);
  train(a[2].id, 21);

  const int64_t second = submit({{"late", 20}}, true);
  const std::vector<JobRow> b = store_->sweeps.jobs(second);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_TRUE(b[0].sweep_reuse);
  EXPECT_EQ(candidates(b[0].id), std::vector<int64_t>{a[0].id});
  EXPECT_TRUE(candidates(b[1].id).empty())
      << "its trunk has not finished: whether it trained what the run's trunk did is unknown";
  const auto offer = store_->workers.reuse_candidates(b[0].id).at(0);
  EXPECT_EQ(offer.offer.job, a[0].id);
  EXPECT_EQ(offer.offer.dataset_id, kData.id);
  EXPECT_EQ(offer.offer.trainer_binary_sha256, kTrainer.binary_sha256);
  EXPECT_EQ(offer.run.sweep_id, first);

  // The trunk's trainer took the offer: nothing trained, the run's results stand for it.
  const JobRow trunk = acquire(b[0].id);
  ASSERT_EQ(store_->workers.complete_reused({trunk.id, trunk.attempt}, a[0].id, now_ms_),
            Fence::kOk);
  const JobRow reused = *store_->sweeps.job(trunk.id);
  EXPECT_EQ(reused.state, JobState::kSucceeded);
  ASSERT_TRUE(reused.reused);
  EXPECT_EQ(reused.reused->job_id, a[0].id);
  EXPECT_EQ(reused.checkpoint_owner().sweep_id, first) << "its checkpoints are the run's";
  EXPECT_EQ(reused.step, 40);
  EXPECT_EQ(reused.last_val_loss, 2.5);
  EXPECT_EQ(reused.message, "reused job " + std::to_string(a[0].id) + " of sweep " +
                                std::to_string(first) + ": same config, data and trainer");
  const auto summary = trainer_core::summary_from_json(
      nlohmann::json::parse(store_->metrics.summaries(second).at(trunk.id)));
  EXPECT_EQ(summary.reused_from_job, a[0].id);
  EXPECT_EQ(summary.final_val_loss, 2.5);
  EXPECT_EQ(curve(trunk.id), curve(a[0].id)) << "its curve is the run's, read through";
  EXPECT_EQ(store_->metrics.eval_points(trunk.id).size(), 1u);
  EXPECT_EQ(candidates(b[1].id), std::vector<int64_t>{a[2].id})
      << "the fork of the same config that branched at step 10 is another run";

  // Its fork, now ready, takes its own run: the trunk's curve up to step 20, then the fork's.
  const JobRow fork = acquire(b[1].id);
  ASSERT_EQ(store_->workers.complete_reused({fork.id, fork.attempt}, a[2].id, now_ms_), Fence::kOk);
  EXPECT_EQ(curve(fork.id), curve(a[2].id));
  EXPECT_EQ(curve(fork.id).size(), 40u);

  // A reused job is never offered: the run that trained is.
  const int64_t third = submit({}, true);
  EXPECT_EQ(candidates(store_->sweeps.jobs(third)[0].id), std::vector<int64_t>{a[0].id});
}

TEST_F(ReuseStoreTest, RunsWithoutARecordedOriginOrOfAnotherAncestryAreNeverOffered) {
  const int64_t first = submit({{"late", 20}}, false);
  const std::vector<JobRow> a = store_->sweeps.jobs(first);
  train(a[0].id, 1);
  train(a[1].id, 21, "another dataset");  // its prefix was trained on other data
  const int64_t second = submit({{"late", 20}}, true);
  const std::vector<JobRow> b = store_->sweeps.jobs(second);
  EXPECT_EQ(candidates(b[0].id), std::vector<int64_t>{a[0].id});
  EXPECT_TRUE(candidates(b[1].id).empty()) << "its trunk's summary names other data";

  // A summary that names no trainer (a run from before identities were kept) is no basis.
  const JobRow trunk = acquire(b[0].id);
  ASSERT_EQ(store_->workers.complete_job({trunk.id, trunk.attempt}, JobState::kSucceeded, "",
                                         trainer_core::to_json(trainer_core::RunSummary{}).dump(),
                                         now_ms_),
            Fence::kOk);
  const int64_t third = submit({}, true);
  EXPECT_EQ(candidates(store_->sweeps.jobs(third)[0].id), std::vector<int64_t>{a[0].id});

  // A worker that claims a run it was not offered fails the job, naming it.
  const JobRow claimed = acquire(b[1].id);
  ASSERT_EQ(store_->workers.complete_reused({claimed.id, claimed.attempt}, a[1].id, now_ms_),
            Fence::kOk);
  const JobRow failed = *store_->sweeps.job(claimed.id);
  EXPECT_EQ(failed.state, JobState::kFailed);
  EXPECT_EQ(failed.message, "its worker reported reusing job " + std::to_string(a[1].id) +
                                ", which is not a finished run of the same config, data and "
                                "trainer");
  EXPECT_FALSE(failed.reused);
}

}  // namespace
