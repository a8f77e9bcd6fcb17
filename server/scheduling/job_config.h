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
//   - A job of a sweep with `reuse: true` may be offered a finished run to stand in for it
//     (reusable_run, trainer_core/train/reuse.h); any reusable_run a stored config carries is
//     replaced, so only the coordinator offers.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "trainer_core/config/train_config.h"

namespace server {

// Where a fork starts: the checkpoint kept at the branch step by its parent or, when the parent
// reused a finished run, by that run (whose checkpoints its parent's are).
struct ForkSource {
  int64_t sweep_id = 0, job_id = 0;  // whose checkpoint directory holds it
  int64_t branch_step = 0;
};

struct LeasedJob {
  int64_t sweep_id = 0, job_id = 0, max_steps = 0;
  std::vector<int64_t> pinned_steps;  // its forks' branch steps
  std::optional<ForkSource> fork;
  std::optional<trainer_core::ReusableRunConfig> reusable_run;  // offered in place of training
};

// <root>/sweep-<S>/job-<J>: where a job's attempts checkpoint.
std::string job_checkpoint_dir(const std::string& root, int64_t sweep_id, int64_t job_id);

nlohmann::json job_time_config(const std::string& stored_config, const LeasedJob& job,
                               const std::string& checkpoint_root);

}  // namespace server
