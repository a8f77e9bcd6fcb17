#include "server/tuning/forking.h"

#include <set>

#include "server/scheduling/fork_source.h"

namespace server {

namespace {

ForkParent fork_parent_of(const JobRow& row) {
  const RunRef owner = row.checkpoint_owner();
  ForkParent parent{owner.sweep_id, owner.job_id, ParentProgress::kNotEnded, row.step,
                    row.batch_tokens};
  if (row.state == JobState::kSucceeded)
    parent.progress = ParentProgress::kSucceeded;
  else if (is_terminal(row.state))
    parent.progress = ParentProgress::kEndedOtherwise;
  return parent;
}

}  // namespace

sweep_file::ExpandedJob expanded_job_of(const JobRow& row) {
  sweep_file::ExpandedJob job;
  job.index = row.index;
  job.label = row.label;
  job.ablation = row.ablation;
  job.seed = row.seed;
  job.optimizer = row.optimizer;
  job.batch_tokens = row.batch_tokens;
  job.max_steps = row.max_steps;
  job.config_hash = row.config_hash;
  job.config = nlohmann::json::parse(row.config);
  job.role = row.role;
  return job;
}

ForkOutcome fork_stored_job(SweepStore& sweeps, const std::string& checkpoint_root,
                            const JobRow& parent, const ForkRequest& request, int64_t now_ms) {
  ForkOutcome out;
  std::set<std::string> known;
  std::optional<sweep_file::ExpandedJob> fork =
      sweep_file::fork_of(expanded_job_of(parent), request.spec, known, out.problems, request.path);
  for (const JobRow& j : sweeps.jobs(parent.sweep_id))
    if (fork && j.label == fork->label && j.seed == fork->seed) {
      out.existing = j;
      out.problems.push_back({request.path + ".label",
                              "sweep " + std::to_string(parent.sweep_id) + " already has a job " +
                                  j.label + " of seed " + std::to_string(j.seed) + " (job " +
                                  std::to_string(j.id) + "): name this fork"});
    }
  if (!out.problems.empty()) return out;
  out.branch_step = fork->fork->branch_step;
  out.changes = fork->fork->changes;
  out.refusal = prepare_fork_start(checkpoint_root, fork_parent_of(parent), out.branch_step);
  if (!out.refusal.empty()) return out;
  if (request.role) fork->role = *request.role;
  fork->reason = request.reason;
  out.added = sweeps.add_fork(parent.id, *fork, now_ms);
  return out;
}

}  // namespace server
