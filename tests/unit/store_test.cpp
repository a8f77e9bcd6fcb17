// The SQLite store on a real database file.
#include "server/storage/store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "orchestrator.pb.h"
#include "scratch_dir.h"
#include "server/storage/clock.h"
#include "server/storage/migrations.h"
#include "step_points.h"
#include "sweep_file/sweep_spec.h"
#include "trainer_core/train/run_records.h"

using namespace server;
using namespace sweep_file;

namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fresh_test_dir("store_test");
    store_ = std::make_unique<Store>(path());
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::string path() const { return (dir_ / "s.db").string(); }
  int64_t submit(int seeds = 2, int max_attempts = 2) {
    std::string spec =
        "name: t\nbase: {model: {preset: micro}, training: {max_steps: 10, batch_tokens: 256, "
        "micro_batch: 8}}\n"
        "seeds: [";
    for (int s = 1; s <= seeds; ++s) spec += (s > 1 ? ", " : "") + std::to_string(s);
    spec += "]\nmax_attempts: " + std::to_string(max_attempts) + "\n";
    const SweepPlan plan = plan_sweep(spec, "t.yaml", 100);
    EXPECT_TRUE(plan.problems.empty());
    return store_->sweeps.create_sweep(plan, spec, 1000);
  }
  void add_worker(const std::string& id) {
    WorkerRow w;
    w.id = id;
    w.hostname = "h";
    w.backend = "cpu";
    w.slots = 4;
    w.devices_json = "[]";
    store_->workers.register_worker(w, {}, 1000, 5000);
  }
  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, MigrationsAreAppliedOnceAndRecorded) {
  Database db(path());
  EXPECT_EQ(migrate(db), embedded_migrations().back().version);
  Statement q(db.handle(), "SELECT COUNT(*) FROM schema_migrations");
  ASSERT_TRUE(q.step());
  EXPECT_EQ(q.int64(0), int64_t(embedded_migrations().size()));
}

// A sweep's analysis section is stored with it and read back as it was submitted.
TEST_F(StoreTest, TheAnalysisSectionIsStoredWithTheSweep) {
  const std::string spec =
      "name: t\nbase: {model: {preset: micro}, training: {max_steps: 10, batch_tokens: 256, "
      "micro_batch: 8}}\nseeds: [1, 2, 3]\n"
      "analysis: {selection: held_out_seeds, selection_seeds: [2]}\n";
  const SweepPlan plan = plan_sweep(spec, "t.yaml", 100);
  ASSERT_TRUE(plan.problems.empty());
  const int64_t id = store_->sweeps.create_sweep(plan, spec, 1000);
  const int64_t plain = submit();
  for (const SweepRow& row : store_->sweeps.list_sweeps(10, 0))
    EXPECT_EQ(row.analysis, row.id == id ? plan.analysis : sweep_file::AnalysisSpec{})
        << row.id << plain;
}

TEST_F(StoreTest, RefusesADatabaseFromANewerCoordinator) {
  {
    Database db(path());
    db.exec(
        "INSERT INTO schema_migrations(version, name, applied_ms) VALUES (999, '999_future.sql', "
        "0)");
  }
  store_.reset();
  try {
    Store s(path());
    FAIL() << "opened a newer schema";
  } catch (const DbError& e) {
    EXPECT_NE(std::string(e.what()).find("newer"), std::string::npos) << e.what();
  }
}

// A worker that said it is leaving is leased nothing, also by a coordinator restarted meanwhile
// (the mark is in the database, not in the coordinator's memory), until it registers again.
TEST_F(StoreTest, ALeavingWorkerIsLeasedNothingAcrossARestartUntilItRegistersAgain) {
  submit();
  add_worker("w1");
  EXPECT_FALSE(store_->workers.is_leaving("w1"));
  EXPECT_TRUE(store_->workers.set_leaving("w1"));
  EXPECT_FALSE(store_->workers.set_leaving("w1"));  // said again: no change
  EXPECT_FALSE(store_->workers.acquire_job("w1", {"cpu", 4, 0}, 2000, 5000));
  store_.reset();  // the coordinator restarts
  store_ = std::make_unique<Store>(path());
  EXPECT_TRUE(store_->workers.is_leaving("w1"));
  EXPECT_FALSE(store_->workers.acquire_job("w1", {"cpu", 4, 0}, 3000, 5000));
  add_worker("w1");  // it came back
  EXPECT_FALSE(store_->workers.is_leaving("w1"));
  EXPECT_TRUE(store_->workers.acquire_job("w1", {"cpu", 4, 0}, 4000, 5000));
  EXPECT_FALSE(store_->workers.set_leaving("nobody"));
}

TEST_F(StoreTest, MetricWritesAreIdempotentAndFenced) {
  const int64_t sweep = submit();
  add_worker("w");
  const auto job = store_->workers.acquire_job("w", {"cpu", 1, 0}, 2000, 5000);
  ASSERT_TRUE(job);
  EXPECT_EQ(job->attempt, 1);
  const auto batch =
      step_series({step_point(1, 3.0, 1e-3, 1, 256, 0.1), step_point(2, 2.9, 1e-3, 1, 512, 0.2)});
  EXPECT_EQ(store_->metrics.store_metrics({job->id, 1}, batch, {}, 0, 2100), Fence::kOk);
  EXPECT_EQ(store_->metrics.store_metrics({job->id, 1}, batch, {}, -1, 2200),
            Fence::kOk);  // a retried batch
  EXPECT_EQ(store_->metrics.series_points(job->id, "train_loss").size(), 2u);
  EXPECT_EQ(store_->metrics.series_points(job->id, "tokens").at(1).value, 512);
  EXPECT_EQ(store_->sweeps.job(job->id)->state, JobState::kRunning);
  // A stale attempt may not write, nor complete.
  EXPECT_EQ(store_->metrics.store_metrics({job->id, 0}, batch, {}, -1, 2300), Fence::kStale);
  EXPECT_EQ(store_->workers.complete_job({job->id, 2}, JobState::kSucceeded, "", "", 2300),
            Fence::kStale);
  EXPECT_EQ(store_->metrics.store_metrics({424242, 1}, batch, {}, -1, 2300), Fence::kUnknownJob);
  (void)sweep;
}

// What the analysis reads for targets from the data: one sweep's evaluations, every job's in step
// order, and none of another sweep's.
TEST_F(StoreTest, ASweepsEvaluationsAreReadTogetherAndOnlyItsOwn) {
  const int64_t first = submit(2), second = submit(1);
  add_worker("w");
  std::map<int64_t, int64_t> sweep_of;  // job id -> sweep
  while (const auto job = store_->workers.acquire_job("w", {"cpu", 1, 0}, 2000, 5000)) {
    sweep_of[job->id] = job->sweep_id;
    // Sent out of order: the read orders by step.
    const std::vector<EvalRow> evals = {{20, 2.5, 5120, 2.0}, {10, 3.0, 2560, 1.0}};
    ASSERT_EQ(store_->metrics.store_metrics({job->id, job->attempt}, {}, evals, -1, 2100),
              Fence::kOk);
  }
  ASSERT_EQ(sweep_of.size(), 3u);
  const auto evals = store_->metrics.sweep_eval_points(first);
  ASSERT_EQ(evals.size(), 2u);
  for (const auto& [job_id, rows] : evals) {
    EXPECT_EQ(sweep_of.at(job_id), first);
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].step, 10);
    EXPECT_DOUBLE_EQ(rows[1].val_loss, 2.5);
    EXPECT_EQ(rows[0].step, store_->metrics.eval_points(job_id)[0].step);
  }
  EXPECT_EQ(store_->metrics.sweep_eval_points(second).size(), 1u);
}

// A resumed attempt replays its checkpoint's evaluations with their training time but no
// wall-clock time: the stored wall-clock time stays, and the training time is recorded.
TEST_F(StoreTest, AReplayedEvaluationKeepsTheWallClockTimeStoredBeforeIt) {
  submit(1);
  add_worker("w");
  const auto job = store_->workers.acquire_job("w", {"cpu", 1, 0}, 2000, 5000);
  ASSERT_TRUE(job);
  const JobRef ref{job->id, job->attempt};
  ASSERT_EQ(store_->metrics.store_metrics(ref, {}, {{10, 3.0, 2560, 4.0, 2.5}}, -1, 2100),
            Fence::kOk);
  ASSERT_EQ(
      store_->metrics.store_metrics(ref, {}, {{10, 3.0, 2560, kUnknownSeconds, 2.5}}, 10, 2200),
      Fence::kOk);
  const std::vector<EvalRow> back = store_->metrics.eval_points(job->id);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].elapsed_s, 4.0);
  EXPECT_EQ(back[0].train_s, 2.5);
  // From a worker older than train_s: not recorded, read as NaN rather than 0.
  ASSERT_EQ(store_->metrics.store_metrics(ref, {}, {{20, 2.9, 5120, 8.0}}, -1, 2300), Fence::kOk);
  EXPECT_TRUE(std::isnan(store_->metrics.eval_points(job->id).at(1).train_s));
}

// The jobs table counts loss spikes as the summary does: a run of consecutive flagged steps is one.
TEST_F(StoreTest, LossSpikesAreCountedAsEventsNotFlaggedSteps) {
  submit(1);
  add_worker("w");
  const auto job = store_->workers.acquire_job("w", {"cpu", 1, 0}, 2000, 5000);
  ASSERT_TRUE(job);
  std::vector<orchestrator::v1::MetricPoint> points;
  for (int64_t step = 1; step <= 10; ++step)
    points.push_back(
        step_point(step, 3.0, 0, 0, 0, 0, step == 3 || step == 4 || step == 5 || step == 8));
  EXPECT_EQ(store_->metrics.store_metrics({job->id, 1}, step_series(points), {}, 0, 2100),
            Fence::kOk);
  EXPECT_EQ(store_->workers.complete_job({job->id, 1}, JobState::kSucceeded, "", "{}", 2200),
            Fence::kOk);
  EXPECT_EQ(store_->sweeps.job(job->id)->spikes, 2);  // steps 3-5 and step 8
}

// A damaged database is refused at start with a clear message, never served.
TEST_F(StoreTest, ACorruptDatabaseIsRefusedWithTheReason) {
  for (int i = 0; i < 20; ++i) submit(8);
  store_.reset();  // the last connection checkpoints the WAL into the file
  ASSERT_GT(std::filesystem::file_size(path()), 8u * 4096);
  {
    std::fstream f(path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(3 * 4096);
    const std::string garbage(4096, '\xAB');
    f.write(garbage.data(), std::streamsize(garbage.size()));
  }
  try {
    Store damaged(path());
    FAIL() << "a corrupt database was opened";
  } catch (const DbError& e) {
    EXPECT_NE(std::string(e.what()).find("database " + path() + " is corrupt"), std::string::npos)
        << e.what();
  }
}

// A backup taken while the store is open and written is a complete, consistent database.
TEST_F(StoreTest, ABackupWhileRunningIsAConsistentCopy) {
  const int64_t first = submit(3);
  const std::string copy = (dir_ / "backup.db").string();
  backup_database(path(), copy);
  submit(5);  // writes after the backup are not in it
  Store restored(copy);
  ASSERT_TRUE(restored.sweeps.sweep(first));
  EXPECT_EQ(restored.sweeps.jobs(first).size(), 3u);
  EXPECT_FALSE(restored.sweeps.sweep(first + 1));
  EXPECT_FALSE(std::filesystem::exists(copy + ".tmp"));
}

// Fair share between users (scheduler.h): alice with ten sweeps and bob with one get equal job
// slots while both have work, through the store's real queue.
TEST_F(StoreTest, TwoUsersGetEqualSlotsWhateverTheirNumberOfSweeps) {
  const std::string spec =
      "name: t\nbase: {model: {preset: micro}, training: {max_steps: 10, batch_tokens: 256, "
      "micro_batch: 8}}\nseeds: [1, 2, 3, 4, 5, 6, 7, 8]\n";
  const SweepPlan plan = plan_sweep(spec, "t.yaml", 100);
  for (int i = 0; i < 10; ++i) store_->sweeps.create_sweep(plan, spec, 1000 + i, "alice");
  const int64_t bobs = store_->sweeps.create_sweep(plan, spec, 2000, "bob");
  EXPECT_EQ(store_->sweeps.sweep(bobs)->owner, "bob");
  add_worker("w1");  // 4 slots
  add_worker("w2");
  std::map<std::string, int> slots;
  for (const char* w : {"w1", "w2"})
    for (int i = 0; i < 4; ++i) {
      const auto job = store_->workers.acquire_job(w, {"cpu", 4 - i, 0}, 3000, 60000);
      ASSERT_TRUE(job);
      ++slots[store_->sweeps.sweep(job->sweep_id)->owner];
    }
  EXPECT_EQ(slots["alice"], 4);
  EXPECT_EQ(slots["bob"], 4);
  // A cap per user: at 4 each, a cap of 4 holds both back; alice takes a fifth slot without a cap,
  // and then a cap of 5 holds her back while bob's next job still starts.
  add_worker("w3");
  EXPECT_FALSE(
      store_->workers.acquire_job("w3", {"cpu", 4, 0}, 3000, 60000, /*max_running_per_user=*/4));
  const auto fifth = store_->workers.acquire_job("w3", {"cpu", 4, 0}, 3000, 60000);
  ASSERT_TRUE(fifth);
  EXPECT_EQ(store_->sweeps.sweep(fifth->sweep_id)->owner, "alice");
  const auto capped = store_->workers.acquire_job("w3", {"cpu", 3, 0}, 3000, 60000, 5);
  ASSERT_TRUE(capped);
  EXPECT_EQ(store_->sweeps.sweep(capped->sweep_id)->owner, "bob");
}

TEST_F(StoreTest, TheAuditTrailIsAppendOnlyAndTravelsWithTheBackup) {
  store_->audit.append(
      {0, 1000, "alice", "researcher", "submit", "sweep 1", "ipv4:127.0.0.1:1", true, "'t'"});
  store_->audit.append({0, 2000, "bob", "researcher", "cancel", "sweep 1", "ipv4:127.0.0.1:2",
                        false, "researchers may cancel only their own sweeps"});
  store_->audit.append(
      {0, 3000, "alice", "researcher", "cancel", "sweep 1", "ipv4:127.0.0.1:1", true, ""});
  EXPECT_EQ(store_->audit.query({}).size(), 3u);
  const auto alices = store_->audit.query({"alice", 0, 1000});
  ASSERT_EQ(alices.size(), 2u);
  EXPECT_EQ(alices[0].action, "submit");  // oldest first
  EXPECT_EQ(store_->audit.query({"", 2000, 1000}).size(), 2u);
  EXPECT_EQ(store_->audit.query({"", 0, 1}).at(0).at_ms, 3000);  // the newest when limited
  {
    Database db(path());
    EXPECT_THROW(db.exec("UPDATE audit SET allowed = 1"), DbError);
    EXPECT_THROW(db.exec("DELETE FROM audit"), DbError);
  }
  const std::string copy = (dir_ / "backup.db").string();
  backup_database(path(), copy);
  Store restored(copy);
  const auto rows = restored.audit.query({});
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_FALSE(rows[1].allowed);
  EXPECT_EQ(rows[1].detail, "researchers may cancel only their own sweeps");
}

// --audit-retention deletes only rows older than it, says so in the trail, and cannot be set under
// a day; any other deletion is still refused by the table itself.
TEST_F(StoreTest, AuditRetentionPrunesOnlyOldRowsAndSaysSo) {
  const int64_t now = now_ms(), day = 86400000;
  auto add = [&](int64_t age_ms, const std::string& what) {
    store_->audit.append({0, now - age_ms, "alice", "researcher", "submit", "sweep 1",
                          "ipv4:127.0.0.1:1", true, what});
  };
  for (const int64_t age_days : {500, 401, 10, 2, 0}) add(age_days * day, std::to_string(age_days));
  add(day / 2, "half a day");
  Database db(path());
  // The trigger's refusal, not any database error (a busy second connection would be one too).
  auto refused = [&](const std::string& sql) {
    try {
      db.exec(sql);
    } catch (const DbError& e) {
      return std::string(e.what()).find("append-only") != std::string::npos;
    }
    return false;
  };
  EXPECT_TRUE(refused("DELETE FROM audit WHERE detail = '500'"))
      << "no retention recorded: nothing may go";
  EXPECT_EQ(store_->audit.prune(now, 400 * day, "--audit-retention 400d"), 2);
  auto details = [&] {
    std::vector<std::string> out;
    for (const auto& row : store_->audit.query({})) out.push_back(row.detail);
    return out;
  };
  EXPECT_EQ(details(), (std::vector<std::string>{
                           "10", "2", "0", "half a day",
                           "2 row(s) older than 400 day(s) removed (--audit-retention 400d)"}));
  EXPECT_EQ(store_->audit.prune(now, 400 * day, "again"), 0) << "no row about nothing";
  EXPECT_EQ(details().size(), 5u);
  EXPECT_TRUE(refused("DELETE FROM audit WHERE detail = '10'"))
      << "a row inside the retention stays, whoever asks";
  EXPECT_TRUE(refused("DELETE FROM audit"));
  EXPECT_EQ(store_->audit.prune(now, day, "--audit-retention 1d"), 2) << "the 10- and 2-day rows";
  EXPECT_EQ(details().size(), 4u) << "half a day, today, and two prune rows";
  try {
    store_->audit.prune(now, day / 2, "half a day");
    ADD_FAILURE() << "a retention under a day was recorded";
  } catch (const DbError& e) {
    EXPECT_NE(std::string(e.what()).find("CHECK constraint failed"), std::string::npos) << e.what();
  }
  store_->audit.clear_retention();
  add(30 * day, "old again");
  EXPECT_TRUE(refused("DELETE FROM audit WHERE detail = 'old again'"))
      << "without the flag nothing may go again";
}

// A sweep at its max_concurrency with thousands of pending jobs must not hide a later sweep from
// idle workers.
TEST_F(StoreTest, ASweepAtItsLimitWithAHugeQueueDoesNotStarveLaterSweeps) {
  std::string spec =
      "name: big\nbase: {model: {preset: micro}, training: {max_steps: 10, batch_tokens: 256, "
      "micro_batch: 8}}\n"
      "max_concurrency: 1\nseeds: [";
  for (int s = 1; s <= 6000; ++s) spec += (s > 1 ? ", " : "") + std::to_string(s);
  spec += "]\n";
  const SweepPlan big = plan_sweep(spec, "big.yaml", 10000);
  ASSERT_TRUE(big.problems.empty());
  store_->sweeps.create_sweep(big, spec, 1000);
  const int64_t small = submit(1);
  add_worker("w1");
  add_worker("w2");
  const auto first = store_->workers.acquire_job("w1", {"cpu", 1, 0}, 2000, 5000);
  ASSERT_TRUE(first);
  EXPECT_NE(first->sweep_id, small) << "the older sweep goes first";
  const auto second = store_->workers.acquire_job("w2", {"cpu", 1, 0}, 2000, 5000);
  ASSERT_TRUE(second) << "the big sweep is at its limit; the small one must be served";
  EXPECT_EQ(second->sweep_id, small);
}

// Out of memory is a property of the config: the job fails at once instead of max_attempts times.
TEST_F(StoreTest, ANonRetryableFailureEndsTheJobAtOnce) {
  submit(1, 3);
  add_worker("w");
  const auto job = store_->workers.acquire_job("w", {"cpu", 1, 0}, 2000, 5000);
  ASSERT_TRUE(job);
  EXPECT_EQ(store_->workers.complete_job({job->id, 1}, JobState::kFailed, "out of memory", "", 2100,
                                         /*retryable=*/false),
            Fence::kOk);
  EXPECT_EQ(store_->sweeps.job(job->id)->state, JobState::kFailed);
  EXPECT_EQ(store_->sweeps.job(job->id)->attempt, 1);
}

TEST_F(StoreTest, LostLeaseRequeuesWithANewAttemptThenFailsAfterMaxAttempts) {
  submit(1, 2);
  add_worker("w1");
  add_worker("w2");
  const auto first = store_->workers.acquire_job("w1", {"cpu", 1, 0}, 2000, 1000);
  ASSERT_TRUE(first);
  store_->metrics.store_metrics({first->id, 1},
                                step_series({step_point(1, 3), step_point(2, 3), step_point(3, 3)}),
                                {}, 0, 2100);
  EXPECT_EQ(store_->workers.expire_leases(2500, 100000), 0);  // not yet
  EXPECT_EQ(store_->workers.expire_leases(3100, 100000), 1);
  EXPECT_EQ(store_->sweeps.job(first->id)->state, JobState::kPending);
  const auto second = store_->workers.acquire_job("w2", {"cpu", 1, 0}, 3200, 1000);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->attempt, 2);
  EXPECT_EQ(second->worker_id, "w2");
  // The old worker's late writes are refused; the new attempt resumed at step 1 replaces 2 and 3.
  EXPECT_EQ(
      store_->metrics.store_metrics({first->id, 1}, step_series({step_point(4, 3)}), {}, -1, 3300),
      Fence::kStale);
  EXPECT_EQ(
      store_->metrics.store_metrics({first->id, 2}, step_series({step_point(2, 2.5)}), {}, 1, 3300),
      Fence::kOk);
  const auto points = store_->metrics.series_points(first->id, "train_loss");
  ASSERT_EQ(points.size(), 2u);
  EXPECT_EQ(points[1].step, 2);
  EXPECT_DOUBLE_EQ(points[1].value, 2.5);
  EXPECT_EQ(store_->workers.expire_leases(9999, 100000), 1);
  EXPECT_EQ(store_->sweeps.job(first->id)->state, JobState::kFailed);  // max_attempts 2 reached
  EXPECT_NE(store_->sweeps.job(first->id)->message.find("lease lost"), std::string::npos);
}

TEST_F(StoreTest, HandBackDoesNotCountAsAFailure) {
  submit(1, 1);
  add_worker("w");
  const auto j = store_->workers.acquire_job("w", {"cpu", 1, 0}, 2000, 1000);
  EXPECT_EQ(store_->workers.complete_job({j->id, 1}, JobState::kPending, "handed back", "", 2100),
            Fence::kOk);
  const auto again = store_->workers.acquire_job("w", {"cpu", 1, 0}, 2200, 1000);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->attempt, 2);
  EXPECT_EQ(again->failures, 0);
}

TEST_F(StoreTest, RetryFailedRequeuesOnlyCellsWithoutASuccess) {
  const int64_t sweep = submit(3, 1);
  add_worker("w");
  std::vector<int64_t> ids;
  for (int i = 0; i < 3; ++i)
    ids.push_back(store_->workers.acquire_job("w", {"cpu", 4, 0}, 2000, 1000)->id);
  store_->workers.complete_job({ids[0], 1}, JobState::kSucceeded, "", "{}", 2100);
  store_->workers.complete_job({ids[1], 1}, JobState::kFailed, "boom", "", 2100);
  store_->workers.complete_job({ids[2], 1}, JobState::kDiverged, "nan", "", 2100);
  EXPECT_EQ(store_->sweeps.job(ids[1])->state, JobState::kFailed);
  EXPECT_EQ(store_->sweeps.retry_failed(sweep, 2200), 1);
  EXPECT_EQ(store_->sweeps.job(ids[0])->state, JobState::kSucceeded);
  EXPECT_EQ(store_->sweeps.job(ids[1])->state, JobState::kPending);
  EXPECT_EQ(store_->sweeps.job(ids[2])->state, JobState::kDiverged);  // a result, not a failure
}

TEST_F(StoreTest, CancelStopsPendingAtOnceAndAsksWorkersForRunningOnes) {
  const int64_t sweep = submit(3);
  add_worker("w");
  const auto running = store_->workers.acquire_job("w", {"cpu", 1, 0}, 2000, 5000);
  EXPECT_EQ(store_->sweeps.cancel_sweep(sweep, 2100), 3);
  const auto hb = store_->workers.heartbeat("w", {{{running->id, 1}, 5}}, 2200, 5000);
  ASSERT_EQ(hb.cancel.size(), 1u);
  EXPECT_EQ(hb.cancel[0].job_id, running->id);
  int cancelled = 0;
  for (const auto& j : store_->sweeps.jobs(sweep)) cancelled += j.state == JobState::kCancelled;
  EXPECT_EQ(cancelled, 2);
}

TEST_F(StoreTest, DownsampledCurveKeepsSpikesVisible) {
  submit(1);
  add_worker("w");
  const auto j = store_->workers.acquire_job("w", {"cpu", 1, 0}, 2000, 5000);
  std::vector<orchestrator::v1::MetricPoint> points;
  for (int64_t s = 1; s <= 1000; ++s)
    points.push_back(step_point(s, s == 537 ? 9.0 : 2.0, 0, 0, 0, 0, s == 537));
  store_->metrics.store_metrics({j->id, 1}, step_series(points), {}, 0, 2100);
  const auto curve = store_->metrics.downsampled_curve(j->id, 10);
  ASSERT_EQ(curve.size(), 10u);
  EXPECT_EQ(curve[0].first_step, 1);
  EXPECT_EQ(curve[9].last_step, 1000);
  for (const CurveBucket& b : curve) {
    const bool holds_spike = b.first_step <= 537 && 537 <= b.last_step;
    EXPECT_EQ(b.max_value,
              holds_spike ? 9.0 : 2.0);  // the spike at step 537 survives in its bucket
    EXPECT_EQ(b.flagged, holds_spike);
    EXPECT_EQ(b.min_value, 2.0);
    if (holds_spike) {
      EXPECT_NEAR(b.mean_value, 2 + 7.0 / double(b.last_step - b.first_step + 1), 1e-9);
    }
  }
  EXPECT_EQ(store_->metrics.downsampled_curve(j->id, 5000).size(),
            1000u);  // never more buckets than points
  EXPECT_TRUE(store_->metrics.downsampled_curve(999, 10).empty());
}

TEST_F(StoreTest, SurvivesReopeningTheFile) {
  const int64_t sweep = submit(2);
  store_.reset();
  store_ = std::make_unique<Store>(path());
  EXPECT_EQ(store_->sweeps.jobs(sweep).size(), 2u);
  EXPECT_EQ(store_->sweeps.sweep(sweep)->name, "t");
}

}  // namespace

namespace {

TEST(JobStates, NamesRoundTripAndSqlSpellsThemThroughOnePlace) {
  for (JobState s : kAllJobStates) EXPECT_EQ(parse_job_state(job_state_name(s)), s);
  EXPECT_THROW(parse_job_state("pending"), std::invalid_argument);  // stored names are exact
  EXPECT_EQ(with_job_states("state IN ({ASSIGNED}, {RUNNING})"),
            "state IN ('ASSIGNED', 'RUNNING')");
  EXPECT_THROW(with_job_states("state = {DONE}"),
               std::invalid_argument);  // a typo fails at once, not silently
  EXPECT_TRUE(is_terminal(JobState::kDiverged));
  EXPECT_FALSE(is_terminal(JobState::kRunning));
  EXPECT_TRUE(is_active(JobState::kAssigned));
}

}  // namespace

namespace {}  // namespace
