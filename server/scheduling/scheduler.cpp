#include "server/scheduling/scheduler.h"

#include <tuple>

namespace server {

namespace {
template <typename Key>
int count_in(const std::map<Key, int>& counts, const Key& key) {
  const auto it = counts.find(key);
  return it == counts.end() ? 0 : it->second;
}
}  // namespace

std::optional<PendingJob> pick_job(const std::vector<PendingJob>& pending,
                                   const RunningJobs& running, const WorkerCapacity& worker,
                                   int max_running_per_user) {
  if (worker.free_slots <= 0) return std::nullopt;
  // Smaller is better: the owner's running jobs (fair share between users), then within the
  // owner: priority, the sweep's running jobs, age and position.
  auto rank = [&](const PendingJob& j) {
    return std::make_tuple(count_in(running.by_owner, j.owner), -j.priority,
                           count_in(running.by_sweep, j.sweep_id), j.sweep_id, j.index);
  };
  std::optional<PendingJob> best;
  for (const PendingJob& job : pending) {
    if (job.backend != worker.backend) continue;
    if (job.backend == "cuda" && job.gpus > worker.free_gpus) continue;
    if (job.max_concurrency > 0 && count_in(running.by_sweep, job.sweep_id) >= job.max_concurrency)
      continue;
    if (max_running_per_user > 0 && count_in(running.by_owner, job.owner) >= max_running_per_user)
      continue;
    if (!best || rank(job) < rank(*best)) best = job;
  }
  return best;
}

}  // namespace server
