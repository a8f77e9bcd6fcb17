#include "server/scheduling/job_config.h"

#include <algorithm>
#include <filesystem>
#include <stdexcept>

#include "trainer_core/train/checkpoint_files.h"

namespace server {

using nlohmann::json;

std::string job_checkpoint_dir(const std::string& root, int64_t sweep_id, int64_t job_id) {
  return (std::filesystem::path(root) / ("sweep-" + std::to_string(sweep_id)) /
          ("job-" + std::to_string(job_id)))
      .string();
}

std::vector<int64_t> rewind_points(int64_t max_steps, int64_t checkpoint_every) {
  std::vector<int64_t> steps;
  const int64_t every =
      std::max(checkpoint_every, (max_steps + kMaxRewindPoints - 1) / kMaxRewindPoints);
  for (int64_t step = every; every > 0 && step < max_steps; step += every) steps.push_back(step);
  return steps;
}

json job_time_config(const std::string& stored_config, const LeasedJob& job,
                     const std::string& checkpoint_root) {
  json config = json::parse(stored_config);
  config.erase("reusable_run");
  if (job.reusable_run) {
    trainer_core::TrainConfig carrier;  // written through the config's own field list
    carrier.reusable_run = *job.reusable_run;
    config["reusable_run"] = trainer_core::to_json(carrier)["reusable_run"];
  }
  json& training = config["training"];
  if (!checkpoint_root.empty()) {
    training["checkpoint_dir"] = job_checkpoint_dir(checkpoint_root, job.sweep_id, job.job_id);
    if (training.value("checkpoint_every", 0) == 0)
      training["checkpoint_every"] = std::max<int64_t>(1, job.max_steps / 10);
    std::vector<int64_t> pinned = job.pinned_steps;
    if (job.keeps_rewind_points)
      for (int64_t step : rewind_points(job.max_steps, training["checkpoint_every"].get<int64_t>()))
        pinned.push_back(step);
    if (!pinned.empty()) {
      std::vector<int64_t> kept = training.value("checkpoint_at_steps", std::vector<int64_t>());
      kept.insert(kept.end(), pinned.begin(), pinned.end());
      std::sort(kept.begin(), kept.end());
      kept.erase(std::unique(kept.begin(), kept.end()), kept.end());
      training["checkpoint_at_steps"] = kept;
    }
    if (job.fork)
      training["fork_from"] = trainer_core::kept_checkpoint_path(
          job_checkpoint_dir(checkpoint_root, job.fork->sweep_id, job.fork->job_id),
          job.fork->branch_step);
  } else if (job.fork) {
    throw std::invalid_argument("job " + std::to_string(job.job_id) +
                                " is a fork: it starts from its parent's kept checkpoint, which "
                                "needs the coordinator's --checkpoint-root");
  } else if (training.value("checkpoint_dir", std::string()).empty()) {
    training["checkpoint_every"] = 0;
  }
  return config;
}

}  // namespace server
