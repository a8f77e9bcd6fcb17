// The worker daemon: registers its devices, leases jobs up to its free slots, runs each in a
// child process of its own binary, streams the child's metrics to the coordinator in batches,
// heartbeats, honours cancellations, and on SIGTERM checkpoints its jobs and hands them back.
// While the coordinator is unreachable it keeps its jobs running and buffers their metrics.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "client/channel.h"
#include "orchestrator.grpc.pb.h"
#include "trainer_core/util/thread_annotations.h"
#include "worker/running_job.h"

namespace worker {

struct DaemonOptions {
  orchestrator_client::Endpoint coordinator;
  std::string worker_id;
  std::string backend = "cpu";  // cpu | cuda
  int slots = 1;
  int gpus = 0;             // CUDA devices this worker hands out (backend cuda)
  int threads_per_job = 0;  // 0: cores / slots
  std::string work_dir;     // job configs and logs
  std::string self_path;    // this binary, re-executed as "run-job"
  int max_batch_points = 2000;
  // Metric points a job keeps in memory while the coordinator is away; older ones spill, in
  // order, to an append-only file under work_dir and are sent from there first when it is back.
  int max_buffered_points = 200000;
  // Started by an allocation the coordinator asked a cluster engine for (its name: the
  // coordinator shows the worker beside it); empty when started by hand.
  std::string allocation;
  // > 0: with no job for this long, leave (say so, exit 0), so that the allocation ends.
  int idle_exit_s = 0;
};

// Threads: run() registers and leases jobs on the calling thread and starts the heartbeat loop
// (which also registers again when needed) and the report loop (metrics, completions); each job
// has a reader thread for its child's pipe (job_process.cpp). Locks: mu_ guards the job map and
// is taken before a job's mu, never after. Lifetime: main() owns the daemon; jobs live in
// jobs_ until the report loop has completed them and joined their reader.
class Daemon {
 public:
  explicit Daemon(DaemonOptions options);
  ~Daemon();
  int run();  // until shutdown() and every job handed back or finished
  void shutdown() { stopping_ = true; }
  // Registered with the coordinator and heard back within the last heartbeat cycles.
  bool ready() const { return !need_register_ && !stopping_; }

 private:
  bool register_worker();
  void heartbeat_loop();
  void report_loop();
  void start_job(const orchestrator::v1::Lease& lease);
  void read_child(RunningJob* job);
  // Sends buffered metrics, then the completion once the child has exited; false when the
  // coordinator did not answer (try again later).
  bool flush(RunningJob& job);
  void spill(RunningJob& job) REQUIRES(job.mu);
  int64_t read_spill(RunningJob& job, orchestrator::v1::ReportMetricsRequest& req) REQUIRES(job.mu);
  bool complete(RunningJob& job) EXCLUDES(job.mu);
  // Ships the job's log from where the coordinator's copy ends: one chunk, or (`to_end`) every
  // byte written so far. False while the coordinator cannot be reached.
  bool ship_log(RunningJob& job, bool to_end);
  // The completion of a job whose child has exited: its state, message and summary.
  orchestrator::v1::CompleteJobRequest completion_request(RunningJob& job) REQUIRES(job.mu);
  void hand_back_unstarted(const orchestrator::v1::Lease& lease, const std::string& reason);
  void stop_job(RunningJob& job, int reason);
  void say_leaving();  // a last heartbeat saying it leaves, holding nothing
  int free_slots() EXCLUDES(mu_);
  std::vector<int> free_devices() EXCLUDES(mu_);  // CUDA device indices no running job holds
  std::vector<orchestrator::v1::JobRef> running_refs() EXCLUDES(mu_);

  DaemonOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<orchestrator::v1::WorkerService::Stub> stub_;
  std::atomic<bool> stopping_{false}, draining_{false}, need_register_{true};
  std::atomic<int> heartbeat_ms_{2000};
  trainer_core::Mutex mu_;
  std::map<int64_t, std::unique_ptr<RunningJob>> jobs_ GUARDED_BY(mu_);
};

}  // namespace worker
