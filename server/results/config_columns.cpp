#include "server/results/config_columns.h"

#include <algorithm>
#include <set>

namespace server {

using nlohmann::json;

namespace {

const std::set<std::string> kBookkeepingPaths = {"name",
                                                 "seed",
                                                 "threads",
                                                 "training.checkpoint_dir",
                                                 "training.checkpoint_every",
                                                 "data.cache_dir",
                                                 "data.bpe_dir",
                                                 "metrics.target_losses"};

}  // namespace

bool is_bookkeeping_path(const std::string& dotted_path) {
  // The path itself, or an element below it ("metrics.target_losses.0": lists flatten by index).
  for (std::string path = dotted_path;; path.erase(path.rfind('.'))) {
    if (kBookkeepingPaths.count(path)) return true;
    if (path.find('.') == std::string::npos) return false;
  }
}

json without_bookkeeping(json config) {
  for (std::string path : kBookkeepingPaths) {
    std::replace(path.begin(), path.end(), '.', '/');  // the paths hold no '/' or '~'
    const json::json_pointer pointer("/" + path);
    if (config.contains(pointer)) config[pointer.parent_pointer()].erase(pointer.back());
  }
  return config;
}

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
    if (values.size() > 1 && !is_bookkeeping_path(path)) columns.paths.push_back(path);
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
