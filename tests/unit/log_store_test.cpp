// Run logs in the store (storage/log_store.h) on a real SQLite file: a log's head and tail are
// kept and its middle counted; a chunk shipped twice is stored once; a chunk past the end is not
// stored and the answer says where to ship from; a stale attempt's chunk is refused; reads from
// any offset, across the unkept middle, return what a follower needs.
#include "server/storage/log_store.h"

#include <gtest/gtest.h>

#include "store_with_worker.h"
#include "sweep_file/sweep_spec.h"

namespace {

using server::Fence;
using server::LogStore;

class LogStoreTest : public StoreWithWorker {
 protected:
  LogStoreTest() : StoreWithWorker("log_store_test") {}
  server::JobRef leased() {
    const sweep_file::SweepPlan plan = sweep_file::plan_sweep(
        "name: t\nbase: {model: {preset: micro}, training: {max_steps: 10, batch_tokens: 256, "
        "micro_batch: 8}}\n",
        "t.yaml", 10);
    store_->sweeps.create_sweep(plan, "", 1000);
    const auto job = store_->workers.acquire_job("w", {"cpu", 4, 0}, 2000, 60000);
    EXPECT_TRUE(job);
    return {job->id, job->attempt};
  }
  int64_t ship(const server::JobRef& ref, int64_t offset, const std::string& bytes,
               Fence expect = Fence::kOk) {
    int64_t through = -1;
    EXPECT_EQ(store_->logs.append(ref, offset, bytes, &through), expect);
    return through;
  }
};

TEST_F(LogStoreTest, KeepsHeadAndTailCountsTheMiddleAndStoresEachByteOnce) {
  const server::JobRef ref = leased();
  EXPECT_FALSE(store_->logs.read(ref.job_id, 0, 0)) << "no log yet";
  EXPECT_EQ(ship(ref, 0, "hello "), 6);
  EXPECT_EQ(ship(ref, 0, "hello world\n"), 12) << "the overlap is skipped, the rest stored";
  EXPECT_EQ(ship(ref, 3, "lo"), 12) << "all of it stored before";
  EXPECT_EQ(ship(ref, 20, "later"), 12) << "a gap: not stored; ship from 12";
  auto log = store_->logs.read(ref.job_id, 0, 0);
  ASSERT_TRUE(log);
  EXPECT_EQ(log->before_gap, "hello world\n");
  EXPECT_EQ(log->omitted_bytes, 0);
  EXPECT_EQ(log->after_gap, "");
  EXPECT_EQ(store_->logs.read(ref.job_id, 0, 6)->before_gap, "world\n") << "a follower's read";

  // Invalid UTF-8 and no newline are stored as written; a long log keeps its head and tail.
  std::string all = "hello world\n";
  std::string body;
  for (int i = 0; body.size() < size_t(LogStore::kHeadBytes + 2 * LogStore::kTailBytes); ++i)
    body += "line " + std::to_string(i) + " \xff\xfe\n";
  body += "last, no newline";
  for (size_t at = 0; at < body.size(); at += 50000)
    ship(ref, int64_t(all.size() + at), body.substr(at, 50000));
  all += body;
  log = store_->logs.read(ref.job_id, 0, 0);
  ASSERT_TRUE(log);
  EXPECT_EQ(log->total_bytes, int64_t(all.size()));
  EXPECT_EQ(log->before_gap, all.substr(0, size_t(LogStore::kHeadBytes)));
  EXPECT_EQ(log->after_gap, all.substr(all.size() - size_t(LogStore::kTailBytes)));
  EXPECT_EQ(log->omitted_bytes, int64_t(all.size()) - LogStore::kHeadBytes - LogStore::kTailBytes);
  // Reading from inside the unkept middle: the rest of the middle is counted, the tail follows.
  const int64_t from = LogStore::kHeadBytes + 1000;
  const auto mid = store_->logs.read(ref.job_id, 0, from);
  EXPECT_EQ(mid->before_gap, "");
  EXPECT_EQ(mid->omitted_bytes, int64_t(all.size()) - LogStore::kTailBytes - from);
  EXPECT_EQ(mid->after_gap, log->after_gap);
  // From the end: nothing new.
  const auto end = store_->logs.read(ref.job_id, 0, int64_t(all.size()));
  EXPECT_EQ(end->before_gap + end->after_gap, "");
  EXPECT_EQ(end->omitted_bytes, 0);
  EXPECT_EQ(store_->logs.attempts(ref.job_id), std::vector<int>{ref.attempt});
}

TEST_F(LogStoreTest, AStaleAttemptShipsNothing) {
  const server::JobRef ref = leased();
  ship({ref.job_id, ref.attempt + 1}, 0, "not mine", Fence::kStale);
  ship({ref.job_id + 100, 1}, 0, "no such job", Fence::kUnknownJob);
  EXPECT_FALSE(store_->logs.read(ref.job_id, 0, 0));
}

}  // namespace
