// The config a leased job runs with: the sweep's stored config plus what only the coordinator
// knows at lease time. One function, so the policy is in one place and tested.
//   - With a checkpoint root, every job checkpoints into <root>/sweep-<S>/job-<J> (shared by its
//     attempts, so a retried or handed-back job resumes), about every tenth of its steps unless
//     the sweep chose training.checkpoint_every.
//   - Without one, a job that names no checkpoint_dir does not checkpoint (a sweep's cadence has
//     nowhere to write); a lost job then restarts from step 0.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace server {

nlohmann::json job_time_config(const std::string& stored_config, int64_t sweep_id, int64_t job_id,
                               int64_t max_steps, const std::string& checkpoint_root);

}  // namespace server
