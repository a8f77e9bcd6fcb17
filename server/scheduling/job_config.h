// The config a leased job runs with: the sweep's stored config plus what only the coordinator
// knows at lease time. One function, so the policy is in one place and tested.
//   - With a checkpoint root, every job checkpoints into <root>/sweep-<S>/job-<J> (shared by its
//     attempts, so a retried or handed-back job resumes), about every tenth of its steps unless
//     the sweep chose training.checkpoint_every.
//   - Without one, a job that names no checkpoint_dir does not checkpoint (a sweep's cadence has
//     nowhere to write); a lost job then restarts from step 0.
//   - A job that forks have branched off keeps a checkpoint at each of their branch steps
//     (training.checkpoint_at_steps, beside any the sweep asked for).
//   - A fork starts from its parent's checkpoint kept at the branch step (training.fork_from).
//     Forks need the checkpoint root (admission refuses them without one).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace server {

// Where a fork starts: its parent (a job of the same sweep) and the parent's step.
struct ForkSource {
  int64_t parent_job_id = 0;
  int64_t branch_step = 0;
};

struct LeasedJob {
  int64_t sweep_id = 0, job_id = 0, max_steps = 0;
  std::vector<int64_t> pinned_steps;  // its forks' branch steps
  std::optional<ForkSource> fork;
};

// <root>/sweep-<S>/job-<J>: where a job's attempts checkpoint.
std::string job_checkpoint_dir(const std::string& root, int64_t sweep_id, int64_t job_id);

nlohmann::json job_time_config(const std::string& stored_config, const LeasedJob& job,
                               const std::string& checkpoint_root);

}  // namespace server
