#include "server/scheduling/scheduler.h"

#include <tuple>

namespace server {

std::optional<PendingJob> pick_job(const std::vector<PendingJob>& pending,
                                   const std::map<int64_t, int>& active,
                                   const WorkerCapacity& worker) {
  if (worker.free_slots <= 0) return std::nullopt;
  auto running = [&](int64_t sweep) {
    const auto it = active.find(sweep);
    return it == active.end() ? 0 : it->second;
  };
  // Smaller is better: priority, then fair share (fewest jobs running), then age and position.
  auto rank = [&](const PendingJob& j) {
    return std::make_tuple(-j.priority, running(j.sweep_id), j.sweep_id, j.index);
  };
  std::optional<PendingJob> best;
  for (const PendingJob& job : pending) {
    if (job.backend != worker.backend) continue;
    if (job.backend == "cuda" && job.gpus > worker.free_gpus) continue;
    if (job.max_concurrency > 0) {
      const auto it = active.find(job.sweep_id);
      if (it != active.end() && it->second >= job.max_concurrency) continue;
    }
    if (!best || rank(job) < rank(*best)) best = job;
  }
  return best;
}

}  // namespace server
