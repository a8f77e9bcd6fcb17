// The config a leased job runs with: the sweep's stored config plus what only the coordinator
// knows at lease time. One function, so the policy is in one place and tested.
//   - With a checkpoint root, every job checkpoints into <root>/sweep-<S>/job-<J> (shared by its
//     attempts, so a retried or handed-back job resumes), about every tenth of its steps unless
//     the sweep chose training.checkpoint_every.
//   - Without one, a job that names no checkpoint_dir does not checkpoint (a sweep's cadence has
//     nowhere to write); a lost job then restarts from step 0.
//   - A job that forks have branched off keeps a checkpoint at each of their branch steps
//     (training.checkpoint_at_steps, beside any the sweep asked for).
//   - A job of a sweep with a health rule that rewinds (sweep_file/health_spec.h) keeps the
//     checkpoints of its cadence (rewind_points), where a rewind may start.
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

// Steps a run under a rewind rule keeps checkpoints at: every `checkpoint_every` steps before its
// last (its last step's checkpoint is its latest anyway), but at most kMaxRewindPoints of them
// (the cadence widens to max_steps / kMaxRewindPoints, rounded up): a cadence of 1 on a long run
// must not fill the disk.
constexpr int64_t kMaxRewindPoints = 200;
std::vector<int64_t> rewind_points(int64_t max_steps, int64_t checkpoint_every);

struct LeasedJob {
  int64_t sweep_id = 0, job_id = 0, max_steps = 0;
  std::vector<int64_t> pinned_steps;  // its forks' branch steps
  std::optional<ForkSource> fork;
  std::optional<trainer_core::ReusableRunConfig> reusable_run;  // offered in place of training
  bool keeps_rewind_points = false;                             // its sweep has a rewind rule
};

// <root>/sweep-<S>/job-<J>: where a job's attempts checkpoint.
std::string job_checkpoint_dir(const std::string& root, int64_t sweep_id, int64_t job_id);

nlohmann::json job_time_config(const std::string& stored_config, const LeasedJob& job,
                               const std::string& checkpoint_root);

}  // namespace server
