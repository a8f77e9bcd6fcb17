#include "server/storage/job_state.h"

#include <stdexcept>

namespace server {

const char* job_state_name(JobState state) {
  switch (state) {
    case JobState::kPending:
      return "PENDING";
    case JobState::kAssigned:
      return "ASSIGNED";
    case JobState::kRunning:
      return "RUNNING";
    case JobState::kSucceeded:
      return "SUCCEEDED";
    case JobState::kFailed:
      return "FAILED";
    case JobState::kDiverged:
      return "DIVERGED";
    case JobState::kCancelled:
      return "CANCELLED";
    case JobState::kStopped:
      return "STOPPED";
  }
  return "PENDING";
}

JobState parse_job_state(std::string_view name) {
  for (JobState s : kAllJobStates)
    if (name == job_state_name(s)) return s;
  throw std::invalid_argument("not a job state: " + std::string(name));
}

bool is_terminal(JobState state) {
  return state == JobState::kSucceeded || state == JobState::kFailed ||
         state == JobState::kDiverged || state == JobState::kCancelled ||
         state == JobState::kStopped;
}

std::string with_job_states(std::string_view sql) {
  std::string out;
  out.reserve(sql.size() + 32);
  for (size_t i = 0; i < sql.size();) {
    const size_t open = sql.find('{', i);
    if (open == std::string_view::npos) {
      out.append(sql.substr(i));
      break;
    }
    const size_t close = sql.find('}', open);
    if (close == std::string_view::npos)
      throw std::invalid_argument("unclosed { in SQL: " + std::string(sql));
    out.append(sql.substr(i, open - i));
    out += "'" +
           std::string(job_state_name(parse_job_state(sql.substr(open + 1, close - open - 1)))) +
           "'";
    i = close + 1;
  }
  return out;
}

}  // namespace server
