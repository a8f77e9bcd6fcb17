// The states of a sweep and of a worker (a job's are in job_state.h). A sweep's state is derived
// from its jobs', never stored; a worker's is stored as text in workers.state ('active',
// 'draining', 'lost', 'left': the SQL in store.cpp spells those) and read back through
// parse_worker_state. The proto's SweepState and WorkerState carry the same values
// (api/rows_proto.h maps them).
#pragma once

#include <map>
#include <string_view>

#include "server/storage/job_state.h"

namespace server {

enum class SweepState { kPending, kRunning, kFinished, kCancelled };
constexpr SweepState kAllSweepStates[] = {SweepState::kPending, SweepState::kRunning,
                                          SweepState::kFinished, SweepState::kCancelled};
const char* sweep_state_name(SweepState state);  // "pending", "running", ...

// PENDING until one job is assigned or final; FINISHED when every job is final, CANCELLED when
// every job was cancelled; RUNNING in between.
// planning_open: a tuned sweep whose planner may still add jobs is RUNNING, never FINISHED, while
// every job it has so far is final (the moment between a completion and its planning).
SweepState sweep_state(const std::map<JobState, int>& jobs_by_state, int total_jobs,
                       bool planning_open = false);

// kLeft: the worker said it was leaving and held no job when it went (a provisioned worker idle
// past its timeout, a worker stopped by hand): final until it registers again.
enum class WorkerState { kActive, kDraining, kLost, kLeft };
constexpr WorkerState kAllWorkerStates[] = {WorkerState::kActive, WorkerState::kDraining,
                                            WorkerState::kLost, WorkerState::kLeft};

// The stored text of a state; throws std::invalid_argument for text that is none.
WorkerState parse_worker_state(std::string_view stored);
const char* worker_state_name(WorkerState state);  // "active", "draining", "lost"

}  // namespace server
