// A fork of a stored job, as `sweepctl fork` (server/api/sweep_service.cpp) and a health rule's
// rewind (health.h) make one: the job as the expansion made it, forked by the sweep file's own
// rules (sweep_file::fork_of), its branch point made available or asked of the parent
// (fork_source.h), stored with its lineage. One path, so both refuse alike.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/storage/sweep_store.h"
#include "sweep_file/fork_spec.h"

namespace server {

// A stored job as the expansion made it, to fork from.
sweep_file::ExpandedJob expanded_job_of(const JobRow& row);

struct ForkRequest {
  sweep_file::ForkSpec spec;                // spec.from: the parent's label
  std::string path = "fork";                // where problems are reported ("fork.set.x")
  std::optional<sweep_file::JobRole> role;  // default: the parent's
  std::string reason;                       // why it exists (shown with the job); may be empty
};

struct ForkOutcome {
  std::optional<JobRow> added;                        // set when stored
  std::optional<JobRow> existing;                     // the sweep's job of its label and seed
  std::vector<trainer_core::ConfigProblem> problems;  // the request is invalid
  std::string refusal;                                // valid, but no checkpoint to start from
  int64_t branch_step = 0;
  nlohmann::json changes;  // what the fork changes, path -> value
};

// Adds a fork of `parent` to its sweep, or says why not. Refused (problems, and `existing` set)
// when the sweep already has a job of the fork's label and seed. Throws std::runtime_error when the
// checkpoint root cannot be written.
ForkOutcome fork_stored_job(SweepStore& sweeps, const std::string& checkpoint_root,
                            const JobRow& parent, const ForkRequest& request, int64_t now_ms);

}  // namespace server
