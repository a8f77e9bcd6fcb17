// The provisioner: keeps the workers a cluster engine runs for this coordinator sized to its
// queue. Every round (settings.interval_ms, on its own thread):
//  1. Reconcile: the engine's view of every open allocation is stored (queued, running, ended,
//     failed, with the engine's reason). A `requested` row the engine has under its name is
//     adopted (the coordinator died between the row and sbatch's answer); one the engine never
//     had fails with that said. An allocation of this coordinator's name prefix that the engine
//     runs but no open row wants is cancelled: no orphan keeps a node.
//  2. Plan (demand.h) from the queue, the active workers and the open allocations.
//  3. Withdraw surplus queued allocations; ask for new ones: the row first (requested, with the
//     planner's reason), then the engine, then the engine's id. So a crash at any point leaves a
//     row a restart resolves, and an allocation is never asked for twice.
// Its workers leave on their own when idle (worker --idle-exit-s), which ends the allocation.
// Engine failures are logged and shown on the allocation (engine_reason); the round goes on.
// An allocation that fails before any worker of it registered (sbatch refused, the script
// failed, a bad image) holds further requests back for delay x 2^(failures in a row), at most
// 10 minutes, so that a broken set-up is not resubmitted every few seconds; a worker registering
// from any allocation ends the hold.
#pragma once

#include <condition_variable>
#include <memory>
#include <optional>
#include <thread>

#include "server/provisioning/demand.h"
#include "server/provisioning/engine.h"
#include "server/provisioning/settings.h"
#include "trainer_core/util/thread_annotations.h"

namespace server {

// Why the provisioner asks for nothing now: allocations failed before any worker of theirs
// registered, and further requests are held back (the back-off above). Shown to whoever waits on
// jobs: `sweepctl watch` and the sweep page (for a sweep whose jobs wait on this backend) and
// `sweepctl workers`. Ends when a worker of any allocation registers.
struct ProvisioningSetback {
  std::string allocation;  // the latest failed allocation's name
  std::string cause;       // the engine's reason and the telling line of its output
  int failures_in_a_row = 0;
  int64_t failed_ms = 0;
  int64_t retry_at_ms = 0;  // no new request before this
};

// The line of an engine's output that tells a failure's cause: the first that says "error" and is
// not a task's exit report (srun's "task 0: Exited with exit code 2", which may come before or
// after slurmstepd's execve error: the two write the output file at once), else that exit
// report, else the last non-empty line.
std::string telling_line(const std::string& engine_output);

// Threads: the rounds run on the provisioner's own thread (start()), or on the caller's in tests
// (run_once() without start()); the round state below is that thread's alone. last_decision()
// is read from gRPC and HTTP threads. Lifetime: main() owns it and the allocation store it holds
// by reference, and stops it before the store goes.
class Provisioner {
 public:
  Provisioner(AllocationStore& allocations, ProvisionerSettings settings,
              std::unique_ptr<ClusterEngine> engine);
  ~Provisioner();
  // One round; what the planner decided. Throws nothing (a failing engine is logged).
  DemandDecision run_once(int64_t now_ms) EXCLUDES(mu_);
  void start();  // rounds on a thread until stop()
  void stop() EXCLUDES(mu_);
  const ProvisionerSettings& settings() const { return settings_; }
  DemandDecision last_decision() const EXCLUDES(mu_);
  std::optional<ProvisioningSetback> setback() const EXCLUDES(mu_);
  // Tests only (a hidden coordinator flag): exit like kill -9 right after the N-th allocation
  // the engine accepted, before its id is stored. 0: never.
  void crash_after_submissions(int n) { crash_after_submissions_ = n; }

 private:
  void reconcile(int64_t now_ms);
  // `open`: the open allocations the decision was planned from (the withdrawn ones are among them).
  void act(const DemandDecision& decision, const std::vector<AllocationRow>& open, int64_t now_ms);
  // A failed allocation no worker registered from: holds requests back, says why (setback()).
  void note_failure(const std::string& allocation, const std::string& cause, int64_t now_ms)
      EXCLUDES(mu_);
  void clear_setback() EXCLUDES(mu_);  // a worker registered: the set-up works
  void round_loop() EXCLUDES(mu_);     // the provisioner's thread
  AllocationStore& allocations_;
  ProvisionerSettings settings_;
  std::unique_ptr<ClusterEngine> engine_;
  DemandPlanner planner_;
  std::string prefix_;
  int crash_after_submissions_ = 0, submissions_ = 0;
  int failures_in_a_row_ = 0;
  int64_t hold_until_ms_ = 0;  // no new request before this (after failures)
  mutable trainer_core::Mutex mu_;
  DemandDecision last_ GUARDED_BY(mu_);
  std::optional<ProvisioningSetback> setback_ GUARDED_BY(mu_);
  std::condition_variable_any wake_;  // waits on mu_
  bool stopping_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// The engine the settings name (nullptr for none).
std::unique_ptr<ClusterEngine> make_engine(const ProvisionerSettings& settings);

}  // namespace server
