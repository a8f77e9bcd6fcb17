#include "scheduler.h"

#include <tuple>

namespace server {

std::optional<PendingJob> pick_job(const std::vector<PendingJob>& pending,
                                   const std::map<int64_t, int>& active,
                                   const WorkerCapacity& worker) {
  if (worker.free_slots <= 0) return std::nullopt;
  std::optional<PendingJob> best;
  for (const PendingJob& job : pending) {
    if (job.backend != worker.backend) continue;
    if (job.backend == "cuda" && job.gpus > worker.free_gpus) continue;
    if (job.max_concurrency > 0) {
      const auto it = active.find(job.sweep_id);
      if (it != active.end() && it->second >= job.max_concurrency) continue;
    }
    if (!best || std::make_tuple(-job.priority, job.sweep_id, job.index) <
                     std::make_tuple(-best->priority, best->sweep_id, best->index))
      best = job;
  }
  return best;
}

}  // namespace server
