// A job this worker runs: its child process, the metrics read from it and not yet stored by
// the coordinator (in memory, then spilled to disk), and why it is being stopped. Shared by the
// daemon's loops (daemon.cpp), the child's launch and reader (job_process.cpp) and the spill file
// (metric_spill.cpp). Locking: `mu` guards the buffers and completion fields; the rest is set
// before the reader thread starts and read-only after.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "orchestrator.pb.h"
#include "trainer_core/train/run_records.h"

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
  std::mutex mu;                        // guards everything below
  std::vector<pb::MetricPoint> points;  // newer than every spilled point
  std::vector<pb::EvalPoint> evals;
  // Spilled points: length-prefixed MetricPoint records appended to spill_path; those before
  // spill_sent_offset have been stored by the coordinator.
  std::string spill_path;
  int64_t spilled = 0, spill_sent_offset = 0, spill_end = 0;
  int64_t resumed_from = -1;  // from the child's start line; sent with the first batch
  bool resume_sent = false;
  int64_t last_step = 0;
  std::optional<trainer_core::SummaryRecord>
      summary;               // the child's last record, when it got that far
  MetricNames metric_names;  // the names its points' NamedValues index, sent with every batch
  bool names_dropped = false;
  std::atomic<int> stop_reason{kNone};
  bool exited = false;
  int exit_status = 0;
};

}  // namespace worker
