#include "server/scheduling/job_config.h"

#include <algorithm>
#include <filesystem>

namespace server {

using nlohmann::json;

json job_time_config(const std::string& stored_config, int64_t sweep_id, int64_t job_id,
                     int64_t max_steps, const std::string& checkpoint_root) {
  json config = json::parse(stored_config);
  json& training = config["training"];
  if (!checkpoint_root.empty()) {
    training["checkpoint_dir"] =
        (std::filesystem::path(checkpoint_root) / ("sweep-" + std::to_string(sweep_id)) /
         ("job-" + std::to_string(job_id)))
            .string();
    if (training.value("checkpoint_every", 0) == 0)
      training["checkpoint_every"] = std::max<int64_t>(1, max_steps / 10);
  } else if (training.value("checkpoint_dir", std::string()).empty()) {
    training["checkpoint_every"] = 0;
  }
  return config;
}

}  // namespace server
