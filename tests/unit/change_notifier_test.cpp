// Long polls for jobs wake on scheduling changes only; watchers wake on every change.
#include "server/doors/change_notifier.h"

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

}  // namespace
