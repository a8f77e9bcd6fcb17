// The coordinator's settings that its gRPC services read (from the command line; read-only after
// start, so shared by every handler thread without a lock).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sweep_file/sweep_spec.h"

namespace server {

struct CoordinatorOptions {
  int64_t lease_ms = 15000;      // a worker silent this long loses its jobs
  int max_running_per_user = 0;  // jobs ASSIGNED or RUNNING per sweep owner at most (0: no cap)
  int heartbeat_interval_ms = 2000;
  std::string checkpoint_root;  // shared by workers; empty: retries restart from step 0
  size_t max_jobs_per_sweep = sweep_file::kDefaultMaxJobsPerSweep;
  // --notify-allow: origins ("https://host:443", sweep_file::WebhookUrl::origin) a sweep's
  // notify: URLs may name; empty: a sweep may name none.
  std::vector<std::string> notify_allow_origins;
  // Tests only (a hidden flag): the coordinator exits at once, like a kill -9, after storing its
  // N-th job completion and before planning from it, so a test can prove that the restarted
  // coordinator plans what the dead one did not (tuning/planner.h). 0: never.
  int crash_after_completions = 0;
};

}  // namespace server
