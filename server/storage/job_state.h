// A job's state: the one list, its names (as stored in SQLite, sent in the proto's JobState and
// shown to users), and the SQL spelling of them. Every other file uses the enum.
//   PENDING -> ASSIGNED -> RUNNING -> SUCCEEDED | FAILED | DIVERGED | CANCELLED | STOPPED
//   (a lost lease, a hand-back or a retry sends ASSIGNED/RUNNING/FAILED back to PENDING)
// STOPPED: a tuning run early stopping ended because it was among its row's worst at a rung
// (server/tuning/early_stop.h); a result of the search, neither a failure nor a cancellation.
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace server {

enum class JobState {
  kPending,
  kAssigned,
  kRunning,
  kSucceeded,
  kFailed,
  kDiverged,
  kCancelled,
  kStopped
};

constexpr std::array<JobState, 8> kAllJobStates = {
    JobState::kPending, JobState::kAssigned, JobState::kRunning,   JobState::kSucceeded,
    JobState::kFailed,  JobState::kDiverged, JobState::kCancelled, JobState::kStopped};

const char* job_state_name(JobState state);  // "PENDING", ...
// Throws std::invalid_argument for a name that is not a state.
JobState parse_job_state(std::string_view name);
bool is_terminal(JobState state);
// A job holds a worker's slot: ASSIGNED or RUNNING.
inline bool is_active(JobState state) {
  return state == JobState::kAssigned || state == JobState::kRunning;
}

// SQL text with each {STATE} replaced by that state's quoted name ("state = {PENDING}" ->
// "state = 'PENDING'"), so that queries spell states through this file; an unknown {NAME} throws.
std::string with_job_states(std::string_view sql);

}  // namespace server
