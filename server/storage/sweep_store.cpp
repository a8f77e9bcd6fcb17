#include "server/storage/sweep_store.h"

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "server/storage/fork_rows.h"

namespace server {

using nlohmann::json;

SweepState SweepRow::state() const { return sweep_state(jobs_by_state, total_jobs, planning_open); }

namespace {
constexpr const char* kInsertJob =
    "INSERT INTO jobs(sweep_id, idx, label, ablation, seed, optimizer, batch_tokens, config_hash, "
    "config, backend, gpus, state, max_attempts, max_steps, updated_ms, role, reason, plan_key, "
    "stage) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {PENDING}, ?, ?, ?, ?, ?, NULLIF(?, ''), ?) "
    "ON CONFLICT DO NOTHING";

struct JobResources {
  std::string backend;
  int gpus = 0, max_attempts = 0;
};

// One job row; false when the sweep already has a job of its plan_key.
bool insert_job(Database& db, Statement& insert, int64_t sweep_id, int index,
                const sweep_file::ExpandedJob& e, const JobResources& r, int64_t now_ms) {
  insert.bind(1, sweep_id)
      .bind(2, index)
      .bind(3, e.label)
      .bind(4, e.ablation)
      .bind(5, e.seed)
      .bind(6, e.optimizer)
      .bind(7, e.batch_tokens)
      .bind(8, e.config_hash)
      .bind(9, e.config.dump())
      .bind(10, r.backend)
      .bind(11, r.gpus)
      .bind(12, r.max_attempts)
      .bind(13, e.max_steps)
      .bind(14, now_ms)
      .bind(15, std::string(sweep_file::job_role_name(e.role)))
      .bind(16, e.reason)
      .bind(17, e.plan_key)
      .bind(18, e.stage);
  insert.run();
  return db.changes() > 0;
}
}  // namespace

int64_t SweepStore::create_sweep(const sweep_file::SweepPlan& plan, const std::string& spec_text,
                                 int64_t now_ms, const std::string& owner) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Transaction tx(db);
  Statement s(
      db.handle(),
      "INSERT INTO sweeps(name, spec, priority, max_concurrency, targets, baseline, submitted_ms, "
      "tune, planning_open, owner, analysis, budgets, reuse, health, notify) VALUES (?, ?, ?, ?, "
      "?, "
      "?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  s.bind(1, plan.name)
      .bind(2, spec_text)
      .bind(3, plan.priority)
      .bind(4, plan.max_concurrency)
      .bind(5, json(plan.targets).dump())
      .bind(6, plan.baseline)
      .bind(7, now_ms)
      .bind(8, plan.tune ? sweep_file::to_json(*plan.tune).dump() : std::string())
      .bind(9, plan.tune ? 1 : 0)
      .bind(10, owner)
      .bind(11, sweep_file::to_json(plan.analysis).dump())
      .bind(12, plan.budgets ? sweep_file::to_json(*plan.budgets).dump() : std::string())
      .bind(13, plan.reuse ? 1 : 0)
      .bind(14, plan.health.empty() ? std::string() : sweep_file::to_json(plan.health).dump())
      .bind(15, plan.notify.empty() ? std::string() : json(plan.notify).dump());
  s.run();
  const int64_t sweep_id = sqlite3_last_insert_rowid(db.handle());
  Statement j(db.handle(), with_job_states(kInsertJob).c_str());
  const JobResources resources{plan.backend, plan.gpus, plan.max_attempts};
  for (const sweep_file::ExpandedJob& e : plan.jobs)
    insert_job(db, j, sweep_id, e.index, e, resources, now_ms);
  insert_forks(db, sweep_id, plan.jobs);
  tx.commit();
  return sweep_id;
}

std::vector<SweepRow> SweepStore::list_sweeps(int limit, int64_t before_id) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  std::vector<SweepRow> out;
  Statement q(db.handle(),
              "SELECT id, name, priority, max_concurrency, targets, baseline, submitted_ms, tune, "
              "planning_open, owner, analysis, budgets, reuse FROM sweeps "
              "WHERE id < ? ORDER BY id DESC LIMIT ?");
  q.bind(1, before_id > 0 ? before_id : INT64_MAX).bind(2, limit);
  while (q.step()) {
    SweepRow r;
    r.id = q.int64(0);
    r.name = q.text(1);
    r.priority = int(q.int64(2));
    r.max_concurrency = int(q.int64(3));
    r.targets = json::parse(q.text(4)).get<std::vector<double>>();
    r.baseline = q.text(5);
    r.submitted_ms = q.int64(6);
    if (const std::string tune = q.text(7); !tune.empty())
      r.tune = sweep_file::tune_spec_from_json(json::parse(tune));
    r.planning_open = q.int64(8) != 0;
    r.owner = q.text(9);
    if (const std::string analysis = q.text(10); !analysis.empty())
      r.analysis = sweep_file::analysis_spec_from_json(json::parse(analysis));
    if (const std::string budgets = q.text(11); !budgets.empty())
      r.budgets = sweep_file::budget_ladder_from_json(json::parse(budgets));
    r.reuse = q.int64(12) != 0;
    out.push_back(std::move(r));
  }
  Statement c(db.handle(), "SELECT state, COUNT(*) FROM jobs WHERE sweep_id = ? GROUP BY state");
  for (auto& r : out) {
    c.bind(1, r.id);
    while (c.step()) {
      r.jobs_by_state[parse_job_state(c.text(0))] = int(c.int64(1));
      r.total_jobs += int(c.int64(1));
    }
    c.reset();
  }
  return out;
}

std::optional<SweepRow> SweepStore::sweep(int64_t id) {
  auto rows = list_sweeps(1, id + 1);
  if (rows.empty() || rows[0].id != id) return std::nullopt;
  return rows[0];
}

std::vector<JobRow> SweepStore::jobs(int64_t sweep_id) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  return query_jobs(db, "sweep_id = ? ORDER BY idx", sweep_id);
}

std::optional<JobRow> SweepStore::job(int64_t job_id) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  auto rows = query_jobs(db, "id = ?", job_id);
  if (rows.empty()) return std::nullopt;
  return rows[0];
}

namespace {
// Where jobs added to a sweep after its submission go: the next index, with the resources of
// the sweep's jobs.
struct SweepTail {
  int next_index = 0;
  JobResources resources;
};
SweepTail sweep_tail(Database& db, int64_t sweep_id) {
  Statement q(db.handle(),
              "SELECT MAX(idx), backend, gpus, max_attempts FROM jobs WHERE sweep_id = ?");
  q.bind(1, sweep_id);
  if (!q.step() || q.is_null(0))
    throw std::invalid_argument("sweep " + std::to_string(sweep_id) + " has no jobs to add to");
  return {int(q.int64(0)) + 1, {q.text(1), int(q.int64(2)), int(q.int64(3))}};
}
}  // namespace

int SweepStore::add_planned_jobs(int64_t sweep_id, const std::vector<sweep_file::ExpandedJob>& jobs,
                                 int64_t now_ms) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Transaction tx(db);
  SweepTail tail = sweep_tail(db, sweep_id);
  Statement insert(db.handle(), with_job_states(kInsertJob).c_str());
  int added = 0;
  for (const sweep_file::ExpandedJob& e : jobs)
    if (insert_job(db, insert, sweep_id, tail.next_index, e, tail.resources, now_ms)) {
      ++tail.next_index;
      ++added;
    }
  tx.commit();
  return added;
}

JobRow SweepStore::add_fork(int64_t parent_job_id, const sweep_file::ExpandedJob& fork,
                            int64_t now_ms) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Transaction tx(db);
  const std::vector<JobRow> parent = query_jobs(db, "id = ?", parent_job_id);
  if (parent.empty()) throw std::invalid_argument("no job " + std::to_string(parent_job_id));
  const SweepTail tail = sweep_tail(db, parent[0].sweep_id);
  Statement insert(db.handle(), with_job_states(kInsertJob).c_str());
  if (!insert_job(db, insert, parent[0].sweep_id, tail.next_index, fork, tail.resources, now_ms))
    throw std::invalid_argument("sweep " + std::to_string(parent[0].sweep_id) +
                                " did not take the fork's job row");
  const int64_t job_id = sqlite3_last_insert_rowid(db.handle());
  insert_fork(db, job_id, parent_job_id, *fork.fork);
  end_forks_of_ended_parents(db, now_ms);
  tx.commit();
  return query_jobs(db, "id = ?", job_id).at(0);
}

bool SweepStore::request_stop(int64_t job_id, const std::string& reason, int64_t now_ms,
                              StopScope scope) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  // Early stopping may end tuning and extension runs only; a health rule, any run.
  const std::string roles = scope == StopScope::kTuningRuns ? " AND role IN (?, ?)" : "";
  Statement u(db.handle(),
              with_job_states("UPDATE jobs SET cancel_requested = 1, stop_reason = ?, "
                              "updated_ms = ? WHERE id = ? AND state IN ({ASSIGNED}, {RUNNING}) "
                              "AND stop_reason = ''" +
                              roles)
                  .c_str());
  u.bind(1, reason).bind(2, now_ms).bind(3, job_id);
  if (scope == StopScope::kTuningRuns)
    u.bind(4, std::string(sweep_file::job_role_name(sweep_file::JobRole::kTuning)))
        .bind(5, std::string(sweep_file::job_role_name(sweep_file::JobRole::kExtension)));
  u.run();
  return db.changes() > 0;
}

void SweepStore::close_planning(int64_t sweep_id) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Statement u(db.handle(), "UPDATE sweeps SET planning_open = 0 WHERE id = ?");
  u.bind(1, sweep_id);
  u.run();
}

std::vector<sweep_file::HealthRule> SweepStore::health_rules(int64_t sweep_id) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Statement q(db.handle(), "SELECT health FROM sweeps WHERE id = ?");
  q.bind(1, sweep_id);
  if (!q.step() || q.text(0).empty()) return {};
  return sweep_file::health_rules_from_json(json::parse(q.text(0)));
}

std::vector<int64_t> SweepStore::sweeps_planning_open() {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Statement q(db.handle(), "SELECT id FROM sweeps WHERE planning_open = 1 ORDER BY id");
  std::vector<int64_t> out;
  while (q.step()) out.push_back(q.int64(0));
  return out;
}

int SweepStore::cancel_sweep(int64_t sweep_id, int64_t now_ms) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Transaction tx(db);
  Statement p(db.handle(), with_job_states("UPDATE jobs SET state = {CANCELLED}, message = "
                                           "'cancelled before it ran', updated_ms = ? "
                                           "WHERE sweep_id = ? AND state = {PENDING}")
                               .c_str());
  p.bind(1, now_ms).bind(2, sweep_id);
  p.run();
  int n = int(db.changes());
  // Running jobs stop at the worker's next heartbeat and are reported CANCELLED by it.
  Statement r(
      db.handle(),
      with_job_states(
          "UPDATE jobs SET cancel_requested = 1, updated_ms = ? WHERE sweep_id = ? AND state IN "
          "({ASSIGNED}, {RUNNING})")
          .c_str());
  r.bind(1, now_ms).bind(2, sweep_id);
  r.run();
  n += int(db.changes());
  Statement close(db.handle(), "UPDATE sweeps SET planning_open = 0 WHERE id = ?");
  close.bind(1, sweep_id);
  close.run();  // a cancelled sweep gets no more jobs from its planner
  tx.commit();
  return n;
}

int SweepStore::retry_failed(int64_t sweep_id, int64_t now_ms) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Transaction tx(db);
  // A cell (config hash) is missing when none of its jobs succeeded; its FAILED or CANCELLED jobs
  // run again. DIVERGED is a result, not a failure, and stays.
  Statement q(db.handle(),
              with_job_states(
                  "UPDATE jobs SET state = {PENDING}, failures = 0, cancel_requested = 0, "
                  "worker_id = NULL, "
                  "message = 'requeued by retry-failed', updated_ms = ? "
                  "WHERE sweep_id = ? AND state IN ({FAILED}, {CANCELLED}) AND config_hash NOT IN "
                  "(SELECT config_hash FROM jobs WHERE sweep_id = ? AND state = {SUCCEEDED})")
                  .c_str());
  q.bind(1, now_ms).bind(2, sweep_id).bind(3, sweep_id);
  q.run();
  const int n = int(db.changes());
  // The planner of a tuned sweep reads the retried runs' results when they finish.
  Statement reopen(db.handle(),
                   "UPDATE sweeps SET planning_open = 1 WHERE id = ? AND tune != '' AND ? > 0");
  reopen.bind(1, sweep_id).bind(2, n);
  reopen.run();
  tx.commit();
  return n;
}

std::map<JobState, int> SweepStore::job_counts_by_state() {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  std::map<JobState, int> out;
  Statement q(db.handle(), "SELECT state, COUNT(*) FROM jobs GROUP BY state");
  while (q.step()) out[parse_job_state(q.text(0))] = int(q.int64(1));
  return out;
}

}  // namespace server
