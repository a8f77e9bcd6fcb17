#include "server/results/config_columns.h"

#include <set>

namespace server {

using nlohmann::json;

namespace {

// Keys a job has columns of its own for, or that differ per job without being a setting.
const std::set<std::string> kNotConfigColumns = {"name",           "seed",
                                                 "threads",        "training.checkpoint_dir",
                                                 "data.cache_dir", "metrics.target_losses"};

}  // namespace

void flatten_json(const json& j, const std::string& prefix, std::map<std::string, json>& out) {
  if (j.is_object()) {
    for (const auto& [key, value] : j.items())
      flatten_json(value, prefix.empty() ? key : prefix + "." + key, out);
  } else if (j.is_array() && !j.empty() && j.front().is_object()) {
    return;
  } else if (j.is_array() && !j.empty()) {
    for (size_t i = 0; i < j.size(); ++i) flatten_json(j[i], prefix + "." + std::to_string(i), out);
  } else if (!j.is_array()) {
    out[prefix] = j;
  }
}

ConfigColumns varying_config(const std::vector<JobRow>& jobs) {
  std::vector<std::map<std::string, json>> flat(jobs.size());
  std::map<std::string, std::set<std::string>> seen;
  for (size_t i = 0; i < jobs.size(); ++i) {
    const json config = json::parse(jobs[i].config, nullptr, false);
    if (!config.is_discarded()) flatten_json(config, "", flat[i]);
    for (const auto& [path, value] : flat[i]) seen[path].insert(value.dump());
  }
  // A path some jobs lack differs too: the absent ones read as null.
  for (auto& [path, values] : seen)
    for (const auto& job : flat)
      if (!job.count(path)) values.insert("null");
  ConfigColumns columns;
  for (const auto& [path, values] : seen)
    if (values.size() > 1 && !kNotConfigColumns.count(path)) columns.paths.push_back(path);
  for (size_t i = 0; i < jobs.size(); ++i) {
    std::vector<json>& row = columns.values[jobs[i].id];
    for (const std::string& path : columns.paths) {
      const auto it = flat[i].find(path);
      row.push_back(it == flat[i].end() ? json(nullptr) : it->second);
    }
  }
  return columns;
}

}  // namespace server
