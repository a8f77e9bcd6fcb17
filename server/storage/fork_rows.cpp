#include "server/storage/fork_rows.h"

#include <algorithm>
#include <map>
#include <stdexcept>

#include "server/storage/job_state.h"
#include "server/storage/reuse_rows.h"

namespace server {

const char* const kForkIsReady =
    "NOT EXISTS (SELECT 1 FROM job_forks rf JOIN jobs rp ON rp.id = rf.parent_job_id WHERE "
    "rf.job_id = jobs.id AND rp.step <= rf.branch_step AND rp.state != {SUCCEEDED})";

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
          "UPDATE jobs SET state = CASE p.state WHEN {CANCELLED} THEN {CANCELLED} WHEN "
          "{DIVERGED} THEN {DIVERGED} ELSE {FAILED} END, updated_ms = ?1, message = 'its parent, "
          "job ' || p.id || ', ended ' || p.state || "
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

std::optional<ForkLink> fork_link(Database& db, int64_t job_id) {
  Statement q(db.handle(), "SELECT parent_job_id, branch_step FROM job_forks WHERE job_id = ?");
  q.bind(1, job_id);
  if (!q.step()) return std::nullopt;
  return ForkLink{q.int64(0), q.int64(1)};
}

int64_t fork_branch_step(Database& db, int64_t job_id) {
  const std::optional<ForkLink> link = fork_link(db, job_id);
  return link ? link->branch_step : -1;
}

namespace {
std::vector<CurveSegment> curve_segments_at(Database& db, int64_t job_id, int depth) {
  if (depth == kMaxForkDepth)
    throw std::runtime_error("job " + std::to_string(job_id) + "'s forks nest deeper than " +
                             std::to_string(kMaxForkDepth));
  if (const int64_t owner = curve_owner(db, job_id); owner != job_id)
    return curve_segments_at(db, owner, depth + 1);
  const std::optional<ForkLink> link = fork_link(db, job_id);
  if (!link) return {{job_id}};
  // The parent's curve up to the branch step, then the fork's own points after it.
  std::vector<CurveSegment> segments = curve_segments_at(db, link->parent_job_id, depth + 1);
  for (CurveSegment& s : segments) s.up_to_step = std::min(s.up_to_step, link->branch_step);
  std::erase_if(segments, [](const CurveSegment& s) { return s.after_step >= s.up_to_step; });
  segments.push_back({job_id, link->branch_step});
  return segments;
}
}  // namespace

std::vector<CurveSegment> curve_segments(Database& db, int64_t job_id) {
  return curve_segments_at(db, job_id, 0);
}

}  // namespace server
