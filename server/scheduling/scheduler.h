// Which pending job a worker gets. Pure: no database, no clock, so every rule is unit-tested.
//
// Rules, in order: a job runs only on a worker of its backend (CPU jobs on CPU workers, CUDA jobs
// on a worker with as many free GPUs as the job needs, all on that one worker); a sweep never has
// more than max_concurrency jobs assigned or running (0 = no limit); among what is left, the
// highest sweep priority wins; among sweeps of equal priority, the one with the fewest jobs
// running (fair share: a colleague's 10-job sweep is not queued behind a 2,000-job one), then the
// oldest sweep, then the job's position in its sweep.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace server {

struct PendingJob {
  int64_t job_id = 0;
  int64_t sweep_id = 0;
  int index = 0;
  int priority = 0;
  int max_concurrency = 0;
  std::string backend;  // cpu | cuda
  int gpus = 0;
};

struct WorkerCapacity {
  std::string backend;  // cpu | cuda
  int free_slots = 0;
  int free_gpus = 0;
};

// active: jobs per sweep currently ASSIGNED or RUNNING.
std::optional<PendingJob> pick_job(const std::vector<PendingJob>& pending,
                                   const std::map<int64_t, int>& active,
                                   const WorkerCapacity& worker);

}  // namespace server
