// Wakes long polls when the coordinator's state changes. Thread-safe; one per coordinator, shared
// by both gRPC services, which hold it by reference. Two kinds of change: progress (anything
// a sweep watcher shows, including every metrics batch) and scheduling (what can let a waiting
// worker acquire a job: a submitted, cancelled or retried sweep, a completed or handed-back job,
// a lost lease, a registered worker). AcquireJob waits on scheduling changes only, so metric
// traffic does not wake every idle worker into a write transaction; WatchSweep waits on both.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace server {

enum class Change { kProgress, kScheduling };

class ChangeNotifier {
 public:
  // A scheduling change is also progress.
  void notify(Change kind);
  // Waits until a change of `kind` after version `seen`, the timeout, or close(); returns the
  // version.
  uint64_t wait(Change kind, uint64_t seen, int timeout_ms);
  uint64_t version(Change kind);
  // The coordinator is shutting down: every wait returns at once, now and later, so long polls
  // end and the gRPC server's shutdown does not wait them out.
  void close();
  bool closed();

 private:
  uint64_t& counter(Change kind) { return kind == Change::kScheduling ? scheduling_ : progress_; }
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t progress_ = 0, scheduling_ = 0;
  bool closed_ = false;
};

}  // namespace server
