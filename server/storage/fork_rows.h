// Forks in the coordinator's tables (migrations/013): a fork's row in job_forks names its parent
// and branch step. What every store needs of them, inside the caller's lock and transaction:
//   - a fork waits until its parent's kept checkpoint exists: the parent has passed the branch
//     step (its step is beyond it) or has succeeded (kForkIsReady, for the lease query);
//   - a parent that ends otherwise before the branch step ends its pending forks with its reason;
//   - a fork's curve is its ancestors' up to each branch step, then its own (curve_segments):
//     stored once, read through.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "server/storage/series_store.h"
#include "server/storage/sqlite_db.h"
#include "sweep_file/sweep_spec.h"

namespace server {

// Forks of forks nest at most this deep: a walk up a lineage stops here (a corrupt row cannot
// loop it).
constexpr int kMaxForkDepth = 64;

// Where a fork branched: its parent and the parent's step.
struct ForkLink {
  int64_t parent_job_id = 0;
  int64_t branch_step = 0;
};

// A condition on an unaliased `jobs` row, with job states still as {NAMES} (with_job_states):
// the job is no fork, or its parent's checkpoint at the branch step exists.
extern const char* const kForkIsReady;

// job_forks rows of a new sweep's forks (ExpandedJob::fork), after its jobs are inserted.
void insert_forks(Database& db, int64_t sweep_id, const std::vector<sweep_file::ExpandedJob>& jobs);
// The job_forks row of one fork (its plan's parent_index is not read: the parent is given).
void insert_fork(Database& db, int64_t job_id, int64_t parent_job_id,
                 const sweep_file::ForkPlan& fork);

// Pending forks whose parent ended FAILED, DIVERGED, STOPPED or CANCELLED without passing the
// branch step become FAILED (CANCELLED when the parent was cancelled; DIVERGED when it diverged:
// the fork shares those steps, so it diverged too, a result and not a missing run), their
// message naming the parent and its reason; forks of those forks follow. Returns how many ended.
int end_forks_of_ended_parents(Database& db, int64_t now_ms);

// A job's curve as stored: the root ancestor's segment first, the job's own last. A job that is
// no fork is one segment, all of its points; a job that reused a finished run reads that run's
// (reuse_rows.h), and so does an ancestor that did.
std::vector<CurveSegment> curve_segments(Database& db, int64_t job_id);
// A fork's parent and branch step (its own points start after it); nullopt for a job that is no
// fork.
std::optional<ForkLink> fork_link(Database& db, int64_t job_id);
// The branch step of a fork; -1 for a job that is no fork.
int64_t fork_branch_step(Database& db, int64_t job_id);

}  // namespace server
