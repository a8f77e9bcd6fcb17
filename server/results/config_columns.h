// The settings that tell jobs apart, as columns: each job's config flattened to dotted paths
// ("optimizer.name", "training.batch_tokens"), keeping the paths whose values differ between the
// jobs (what a grid or ablation varies). The export's columns and the dashboard's filter and
// group-by keys are these, so a column a researcher sees in pandas has the same name in the page.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "server/storage/sweep_store.h"

namespace server {

// Scalars of a JSON document by dotted path; list elements by index ("a.0"). Lists of records
// (spike lists in summaries) are left out: their counts are fields of their own.
void flatten_json(const nlohmann::json& j, const std::string& prefix,
                  std::map<std::string, nlohmann::json>& out);

// Config paths that never change what a run computes: its name and seed (a job has columns of its
// own for them), its threads, where it writes (checkpoints, caches, the BPE files) and the
// target losses it reports. The one list: left out of the settings columns and out of the
// analysis's row identity (analysis.cpp), so a column and a row split on the same keys.
// True for those paths and for every path below one ("metrics.target_losses.0").
bool is_bookkeeping_path(const std::string& dotted_path);
// `config` without those paths.
nlohmann::json without_bookkeeping(nlohmann::json config);

struct ConfigColumns {
  // Invariant: sorted; each differs between at least two of the jobs; paths that differ per job
  // without being a setting (seed, name, threads, directories, target losses) are left out.
  std::vector<std::string> paths;
  // Per job id, one value per path (null where the job's config lacks it).
  std::map<int64_t, std::vector<nlohmann::json>> values;
};

// Reads each job's config once. A config that is not valid JSON counts as empty.
ConfigColumns varying_config(const std::vector<JobRow>& jobs);

}  // namespace server
