// Which pending job a worker gets. Pure: no database, no clock, so every rule is unit-tested.
//
// Rules, in order: a job runs only on a worker of its backend (CPU jobs on CPU workers, CUDA jobs
// on a worker with as many free GPUs as the job needs, all on that one worker); a sweep never has
// more than max_concurrency jobs assigned or running (0 = no limit); a user never has more than
// max_running_per_user (0 = no limit). Among what is left, fair share between users first: the
// owner with the fewest jobs running goes first, so a colleague with one sweep gets as many
// slots as one with ten. Then, among that user's sweeps: the highest priority, then the sweep with
// the fewest jobs running, then the oldest sweep, then the job's position in its sweep.
// In Slurm's terms: every user is an association with an equal share, and a user's sweeps split
// that user's share (a two-level fair tree); usage is the jobs running now, with no memory of past
// usage (a decay half-life of zero), and a sweep's priority orders only its owner's own sweeps.
// Sweeps from before users existed have the owner "" and share as one user.
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
  std::string owner;  // the sweep's owner (access/users.h)
};

struct WorkerCapacity {
  std::string backend;  // cpu | cuda
  int free_slots = 0;
  int free_gpus = 0;
};

// Jobs ASSIGNED or RUNNING now, per sweep and per owner.
struct RunningJobs {
  std::map<int64_t, int> by_sweep;
  std::map<std::string, int> by_owner;
};

std::optional<PendingJob> pick_job(const std::vector<PendingJob>& pending,
                                   const RunningJobs& running, const WorkerCapacity& worker,
                                   int max_running_per_user = 0);

}  // namespace server
