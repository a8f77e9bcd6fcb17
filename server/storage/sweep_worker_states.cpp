#include "server/storage/sweep_worker_states.h"

#include <stdexcept>
#include <string>

namespace server {

SweepState sweep_state(const std::map<JobState, int>& jobs_by_state, int total_jobs,
                       bool planning_open) {
  int done = 0, active = 0;
  for (const auto& [state, n] : jobs_by_state) {
    done += is_terminal(state) ? n : 0;
    active += is_active(state) ? n : 0;
  }
  const auto cancelled = jobs_by_state.find(JobState::kCancelled);
  if (done == total_jobs && planning_open) return SweepState::kRunning;
  if (done == total_jobs)
    return cancelled != jobs_by_state.end() && cancelled->second == total_jobs
               ? SweepState::kCancelled
               : SweepState::kFinished;
  if (active + done > 0) return SweepState::kRunning;
  return SweepState::kPending;
}

const char* sweep_state_name(SweepState state) {
  static const char* const kNames[] = {"pending", "running", "finished", "cancelled"};
  return kNames[int(state)];  // in the enum's order
}

const char* worker_state_name(WorkerState state) {
  static const char* const kNames[] = {"active", "draining", "lost", "left"};
  return kNames[int(state)];  // in the enum's order
}

WorkerState parse_worker_state(std::string_view stored) {
  for (WorkerState s : kAllWorkerStates)
    if (stored == worker_state_name(s)) return s;
  throw std::invalid_argument("not a worker state: " + std::string(stored));
}

}  // namespace server
