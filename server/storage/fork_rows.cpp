#include "server/storage/fork_rows.h"

#include <algorithm>
#include <map>
#include <stdexcept>

#include "server/storage/job_state.h"

namespace server {

const char* const kForkIsReady =
    "NOT EXISTS (SELECT 1 FROM job_forks rf JOIN jobs rp ON rp.id = rf.parent_job_id WHERE "
    "rf.job_id = jobs.id AND rp.step <= rf.branch_step AND rp.state != {SUCCEEDED})";

namespace {
// Forks of forks nest at most this deep: a walk up a lineage stops here (a corrupt row cannot
// loop it).
constexpr int kMaxForkDepth = 64;
}  // namespace

void insert_forks(Database& db, int64_t sweep_id,
                  const std::vector<sweep_file::ExpandedJob>& jobs) {
  Statement ids(db.handle(), "SELECT idx, id FROM jobs WHERE sweep_id = ?");
  ids.bind(1, sweep_id);
  std::map<int, int64_t> id_of_index;
  while (ids.step()) id_of_index[int(ids.int64(0))] = ids.int64(1);
  for (const sweep_file::ExpandedJob& e : jobs)
    if (e.fork)
      insert_fork(db, id_of_index.at(e.index), id_of_index.at(e.fork->parent_index), *e.fork);
}

void insert_fork(Database& db, int64_t job_id, int64_t parent_job_id,
                 const sweep_file::ForkPlan& fork) {
  Statement add(db.handle(),
                "INSERT INTO job_forks(job_id, parent_job_id, branch_step, branch_tokens, changes) "
                "VALUES (?, ?, ?, ?, ?)");
  add.bind(1, job_id)
      .bind(2, parent_job_id)
      .bind(3, fork.branch_step)
      .bind(4, fork.branch_tokens)
      .bind(5, fork.changes.dump());
  add.run();
}

int end_forks_of_ended_parents(Database& db, int64_t now_ms) {
  Statement end(
      db.handle(),
      with_job_states(
          "UPDATE jobs SET state = CASE p.state WHEN {CANCELLED} THEN {CANCELLED} ELSE {FAILED} "
          "END, updated_ms = ?1, message = 'its parent, job ' || p.id || ', ended ' || p.state || "
          "' at step ' || p.step || ', before the branch step ' || f.branch_step || "
          "CASE WHEN p.message != '' THEN ': ' || p.message ELSE '' END "
          "FROM job_forks f JOIN jobs p ON p.id = f.parent_job_id WHERE jobs.id = f.job_id AND "
          "jobs.state = {PENDING} AND p.step <= f.branch_step AND "
          "p.state IN ({FAILED}, {DIVERGED}, {STOPPED}, {CANCELLED})")
          .c_str());
  int ended = 0;
  for (int depth = 0; depth < kMaxForkDepth; ++depth) {
    end.bind(1, now_ms);
    end.run();
    const int n = int(db.changes());
    if (n == 0) break;
    ended += n;
  }
  return ended;
}

int64_t fork_branch_step(Database& db, int64_t job_id) {
  Statement q(db.handle(), "SELECT branch_step FROM job_forks WHERE job_id = ?");
  q.bind(1, job_id);
  return q.step() ? q.int64(0) : -1;
}

std::vector<CurveSegment> curve_segments(Database& db, int64_t job_id) {
  Statement up(db.handle(), "SELECT parent_job_id, branch_step FROM job_forks WHERE job_id = ?");
  std::vector<CurveSegment> segments = {{job_id}};
  for (int depth = 0;; ++depth) {
    if (depth == kMaxForkDepth)
      throw std::runtime_error("job " + std::to_string(job_id) + "'s forks nest deeper than " +
                               std::to_string(kMaxForkDepth));
    up.bind(1, segments.back().job_id);
    if (!up.step()) break;
    const int64_t parent = up.int64(0), branch = up.int64(1);
    up.reset();
    segments.back().after_step = branch;
    segments.push_back({parent, -1, branch});
  }
  std::reverse(segments.begin(), segments.end());
  return segments;
}

}  // namespace server
