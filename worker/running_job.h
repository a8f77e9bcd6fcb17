// A job this worker runs: its child process, the metrics read from it and not yet stored by
// the coordinator (in memory, then spilled to disk), and why it is being stopped. Shared by the
// daemon's loops (daemon.cpp), the child's launch and reader (job_process.cpp) and the spill file
// (metric_spill.cpp). Locking: `mu` guards the buffers and completion fields (Clang checks it:
// GUARDED_BY); the rest is set before the reader thread starts and read-only after, and
// stop_reason is an atomic. Lifetime: the daemon's job map owns it; the report loop joins the
// reader thread before it erases the job.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "orchestrator.pb.h"
#include "trainer_core/train/run_records.h"
#include "trainer_core/util/thread_annotations.h"

namespace worker {

namespace pb = orchestrator::v1;

enum StopReason { kNone = 0, kCancel, kHandBack, kStale };

// A job's metric names, interned: points carry an index, each batch carries the whole table
// (indexes stay valid for the job's life here, spilled points included).
class MetricNames {
 public:
  // -1 for a name the service does not take (a fixed field's) and once the run has
  // kMaxMetricNames names: that value is dropped.
  int intern(const std::string& name) {
    if (trainer_core::is_fixed_field(name)) return -1;
    if (index_.size() >= trainer_core::kMaxMetricNames && !index_.count(name)) return -1;
    const auto [it, added] = index_.try_emplace(name, int(names_.size()));
    if (added) names_.push_back(name);
    return it->second;
  }
  const std::vector<std::string>& names() const { return names_; }

 private:
  std::map<std::string, int> index_;
  std::vector<std::string> names_;
};

struct RunningJob {
  int64_t job_id = 0;
  int attempt = 0;
  pid_t pid = -1;
  int read_fd = -1;
  std::string log_path;
  std::vector<int> devices;  // CUDA devices this job holds (its CUDA_VISIBLE_DEVICES)
  std::thread reader;
  std::string spill_path;  // set at launch, read-only after
  std::atomic<int> stop_reason{kNone};
  trainer_core::Mutex mu;                              // guards everything below
  std::vector<pb::MetricPoint> points GUARDED_BY(mu);  // newer than every spilled point
  std::vector<pb::EvalPoint> evals GUARDED_BY(mu);
  // Spilled points: length-prefixed MetricPoint records appended to spill_path; those before
  // spill_sent_offset have been stored by the coordinator.
  int64_t spilled GUARDED_BY(mu) = 0;
  int64_t spill_sent_offset GUARDED_BY(mu) = 0;
  int64_t spill_end GUARDED_BY(mu) = 0;
  int64_t resumed_from GUARDED_BY(mu) =
      -1;  // from the child's start line; sent with the first batch
  bool resume_sent GUARDED_BY(mu) = false;
  int64_t last_step GUARDED_BY(mu) = 0;
  // The child's last record, when it got that far.
  std::optional<trainer_core::SummaryRecord> summary GUARDED_BY(mu);
  // The names its points' NamedValues index, sent with every batch.
  MetricNames metric_names GUARDED_BY(mu);
  bool names_dropped GUARDED_BY(mu) = false;
  bool exited GUARDED_BY(mu) = false;
  int exit_status GUARDED_BY(mu) = 0;
  // Log shipping (Daemon::ship_log): read and written by the report loop only, so unguarded.
  int64_t log_shipped = 0;        // bytes of log_path the coordinator holds
  int64_t log_shipped_at_ms = 0;  // steady-clock time of the last shipment
};

}  // namespace worker
