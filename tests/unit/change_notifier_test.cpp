// Long polls for jobs wake on scheduling changes only; watchers wake on every change.
#include "server/api/change_notifier.h"

#include <gtest/gtest.h>

#include <thread>

using namespace server;

namespace {

TEST(ChangeNotifier, MetricProgressDoesNotWakeJobPolls) {
  ChangeNotifier changes;
  const uint64_t scheduling = changes.version(Change::kScheduling);
  const uint64_t progress = changes.version(Change::kProgress);
  for (int i = 0; i < 100; ++i) changes.notify(Change::kProgress);  // a stream of metric batches
  // A job poll sees nothing new: it waits out its timeout with the version it had.
  EXPECT_EQ(changes.wait(Change::kScheduling, scheduling, 50), scheduling);
  // A watcher sees the progress at once.
  EXPECT_EQ(changes.wait(Change::kProgress, progress, 50), progress + 100);
}

TEST(ChangeNotifier, ASchedulingChangeWakesBoth) {
  ChangeNotifier changes;
  const uint64_t scheduling = changes.version(Change::kScheduling);
  const uint64_t progress = changes.version(Change::kProgress);
  std::thread completer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    changes.notify(Change::kScheduling);  // a job completed: a slot is free
  });
  EXPECT_EQ(changes.wait(Change::kScheduling, scheduling, 10000), scheduling + 1);
  completer.join();
  EXPECT_EQ(changes.version(Change::kProgress), progress + 1);
}

// Shutting down: a long poll waiting for a job returns at once, not at its timeout, and so does
// every later wait (the coordinator's gRPC shutdown does not wait out the polls).
TEST(ChangeNotifier, CloseEndsEveryWaitAtOnce) {
  ChangeNotifier changes;
  const uint64_t scheduling = changes.version(Change::kScheduling);
  std::thread closer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    changes.close();
  });
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(changes.wait(Change::kScheduling, scheduling, 60000), scheduling);
  closer.join();
  EXPECT_TRUE(changes.closed());
  EXPECT_EQ(changes.wait(Change::kProgress, changes.version(Change::kProgress), 60000),
            changes.version(Change::kProgress));
  // Both waits returned long before their minute: well under the ctest timeout either way.
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30));
}

}  // namespace
