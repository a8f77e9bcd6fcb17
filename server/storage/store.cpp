#include "server/storage/store.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "server/storage/migrations.h"

namespace server {

using nlohmann::json;

namespace {
constexpr const char* kJobColumns =
    "id, sweep_id, idx, label, ablation, seed, optimizer, batch_tokens, config_hash, "
    "config, backend, gpus, state, attempt, failures, max_attempts, COALESCE(worker_id, ''), "
    "COALESCE(lease_expiry_ms, 0), cancel_requested, step, max_steps, last_train_loss, "
    "last_val_loss, spikes, message, role, reason, stage";

JobRow read_job(const Statement& q) {
  JobRow j;
  int c = 0;
  j.id = q.int64(c++);
  j.sweep_id = q.int64(c++);
  j.index = int(q.int64(c++));
  j.label = q.text(c++);
  j.ablation = q.text(c++);
  j.seed = q.int64(c++);
  j.optimizer = q.text(c++);
  j.batch_tokens = q.int64(c++);
  j.config_hash = q.text(c++);
  j.config = q.text(c++);
  j.backend = q.text(c++);
  j.gpus = int(q.int64(c++));
  j.state = parse_job_state(q.text(c++));
  j.attempt = int(q.int64(c++));
  j.failures = int(q.int64(c++));
  j.max_attempts = int(q.int64(c++));
  j.worker_id = q.text(c++);
  j.lease_expiry_ms = q.int64(c++);
  j.cancel_requested = q.int64(c++) != 0;
  j.step = q.int64(c++);
  j.max_steps = q.int64(c++);
  j.last_train_loss = q.real(c++);
  j.last_val_loss = q.real(c++);
  j.spikes = int(q.int64(c++));
  j.message = q.text(c++);
  const std::string role = q.text(c++);
  j.role = sweep_file::parse_job_role(role).value_or(sweep_file::JobRole::kGrid);
  j.reason = q.text(c++);
  j.stage = int(q.int64(c++));
  return j;
}
}  // namespace

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

Store::Store(const std::string& path) : db_(path) {
  check_integrity(db_, path);
  migrate(db_);
  Transaction tx(db_);
  convert_row_points_to_series(db_);
  tx.commit();
  series_ = std::make_unique<SeriesStore>(db_);
}

int64_t Store::create_sweep(const sweep_file::SweepPlan& plan, const std::string& spec_text,
                            int64_t now_ms, const std::string& owner) {
  std::lock_guard lock(mu_);
  Transaction tx(db_);
  Statement s(
      db_.handle(),
      "INSERT INTO sweeps(name, spec, priority, max_concurrency, targets, baseline, submitted_ms, "
      "tune, planning_open, owner, analysis) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
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
      .bind(11, sweep_file::to_json(plan.analysis).dump());
  s.run();
  const int64_t sweep_id = sqlite3_last_insert_rowid(db_.handle());
  Statement j(db_.handle(), with_job_states(kInsertJob).c_str());
  const JobResources resources{plan.backend, plan.gpus, plan.max_attempts};
  for (const sweep_file::ExpandedJob& e : plan.jobs)
    insert_job(db_, j, sweep_id, e.index, e, resources, now_ms);
  tx.commit();
  return sweep_id;
}

std::vector<SweepRow> Store::list_sweeps(int limit, int64_t before_id) {
  std::lock_guard lock(mu_);
  std::vector<SweepRow> out;
  Statement q(db_.handle(),
              "SELECT id, name, priority, max_concurrency, targets, baseline, submitted_ms, tune, "
              "planning_open, owner, analysis FROM sweeps "
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
    out.push_back(std::move(r));
  }
  Statement c(db_.handle(), "SELECT state, COUNT(*) FROM jobs WHERE sweep_id = ? GROUP BY state");
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

std::optional<SweepRow> Store::sweep(int64_t id) {
  auto rows = list_sweeps(1, id + 1);
  if (rows.empty() || rows[0].id != id) return std::nullopt;
  return rows[0];
}

std::vector<JobRow> Store::query_jobs(const char* where_sql, int64_t arg) {
  const std::string sql = std::string("SELECT ") + kJobColumns + " FROM jobs WHERE " + where_sql;
  Statement q(db_.handle(), sql.c_str());
  q.bind(1, arg);
  std::vector<JobRow> out;
  while (q.step()) out.push_back(read_job(q));
  return out;
}

std::vector<JobRow> Store::jobs(int64_t sweep_id) {
  std::lock_guard lock(mu_);
  return query_jobs("sweep_id = ? ORDER BY idx", sweep_id);
}

std::optional<JobRow> Store::job(int64_t job_id) {
  std::lock_guard lock(mu_);
  auto rows = query_jobs("id = ?", job_id);
  if (rows.empty()) return std::nullopt;
  return rows[0];
}

int Store::add_planned_jobs(int64_t sweep_id, const std::vector<sweep_file::ExpandedJob>& jobs,
                            int64_t now_ms) {
  std::lock_guard lock(mu_);
  Transaction tx(db_);
  Statement q(db_.handle(),
              "SELECT MAX(idx), backend, gpus, max_attempts FROM jobs WHERE sweep_id = ?");
  q.bind(1, sweep_id);
  if (!q.step() || q.is_null(0))
    throw std::invalid_argument("sweep " + std::to_string(sweep_id) + " has no jobs to plan from");
  int next = int(q.int64(0)) + 1;
  const JobResources resources{q.text(1), int(q.int64(2)), int(q.int64(3))};
  Statement insert(db_.handle(), with_job_states(kInsertJob).c_str());
  int added = 0;
  for (const sweep_file::ExpandedJob& e : jobs)
    if (insert_job(db_, insert, sweep_id, next, e, resources, now_ms)) {
      ++next;
      ++added;
    }
  tx.commit();
  return added;
}

bool Store::request_stop(int64_t job_id, const std::string& reason, int64_t now_ms) {
  std::lock_guard lock(mu_);
  Statement u(
      db_.handle(),
      with_job_states("UPDATE jobs SET cancel_requested = 1, stop_reason = ?, updated_ms = ? "
                      "WHERE id = ? AND state IN ({ASSIGNED}, {RUNNING}) AND "
                      "role IN (?, ?) AND stop_reason = ''")
          .c_str());
  u.bind(1, reason)
      .bind(2, now_ms)
      .bind(3, job_id)
      .bind(4, std::string(sweep_file::job_role_name(sweep_file::JobRole::kTuning)))
      .bind(5, std::string(sweep_file::job_role_name(sweep_file::JobRole::kExtension)));
  u.run();
  return db_.changes() > 0;
}

void Store::close_planning(int64_t sweep_id) {
  std::lock_guard lock(mu_);
  Statement u(db_.handle(), "UPDATE sweeps SET planning_open = 0 WHERE id = ?");
  u.bind(1, sweep_id);
  u.run();
}

std::vector<int64_t> Store::sweeps_planning_open() {
  std::lock_guard lock(mu_);
  Statement q(db_.handle(), "SELECT id FROM sweeps WHERE planning_open = 1 ORDER BY id");
  std::vector<int64_t> out;
  while (q.step()) out.push_back(q.int64(0));
  return out;
}

int Store::cancel_sweep(int64_t sweep_id, int64_t now_ms) {
  std::lock_guard lock(mu_);
  Transaction tx(db_);
  Statement p(db_.handle(), with_job_states("UPDATE jobs SET state = {CANCELLED}, message = "
                                            "'cancelled before it ran', updated_ms = ? "
                                            "WHERE sweep_id = ? AND state = {PENDING}")
                                .c_str());
  p.bind(1, now_ms).bind(2, sweep_id);
  p.run();
  int n = int(db_.changes());
  // Running jobs stop at the worker's next heartbeat and are reported CANCELLED by it.
  Statement r(
      db_.handle(),
      with_job_states(
          "UPDATE jobs SET cancel_requested = 1, updated_ms = ? WHERE sweep_id = ? AND state IN "
          "({ASSIGNED}, {RUNNING})")
          .c_str());
  r.bind(1, now_ms).bind(2, sweep_id);
  r.run();
  n += int(db_.changes());
  Statement close(db_.handle(), "UPDATE sweeps SET planning_open = 0 WHERE id = ?");
  close.bind(1, sweep_id);
  close.run();  // a cancelled sweep gets no more jobs from its planner
  tx.commit();
  return n;
}

int Store::retry_failed(int64_t sweep_id, int64_t now_ms) {
  std::lock_guard lock(mu_);
  Transaction tx(db_);
  // A cell (config hash) is missing when none of its jobs succeeded; its FAILED or CANCELLED jobs
  // run again. DIVERGED is a result, not a failure, and stays.
  Statement q(db_.handle(),
              with_job_states(
                  "UPDATE jobs SET state = {PENDING}, failures = 0, cancel_requested = 0, "
                  "worker_id = NULL, "
                  "message = 'requeued by retry-failed', updated_ms = ? "
                  "WHERE sweep_id = ? AND state IN ({FAILED}, {CANCELLED}) AND config_hash NOT IN "
                  "(SELECT config_hash FROM jobs WHERE sweep_id = ? AND state = {SUCCEEDED})")
                  .c_str());
  q.bind(1, now_ms).bind(2, sweep_id).bind(3, sweep_id);
  q.run();
  const int n = int(db_.changes());
  // The planner of a tuned sweep reads the retried runs' results when they finish.
  Statement reopen(db_.handle(),
                   "UPDATE sweeps SET planning_open = 1 WHERE id = ? AND tune != '' AND ? > 0");
  reopen.bind(1, sweep_id).bind(2, n);
  reopen.run();
  tx.commit();
  return n;
}

std::vector<JobRef> Store::register_worker(const WorkerRow& w, const std::vector<JobRef>& running,
                                           int64_t now_ms, int64_t lease_ms) {
  std::lock_guard lock(mu_);
  Transaction tx(db_);
  Statement up(
      db_.handle(),
      "INSERT INTO workers(id, hostname, backend, gpus, slots, devices, state, last_heartbeat_ms, "
      "allocation, registered_by) VALUES (?, ?, ?, ?, ?, ?, 'active', ?, ?, ?) ON CONFLICT(id) DO "
      "UPDATE SET registered_by = excluded.registered_by, "
      "hostname = excluded.hostname, allocation = excluded.allocation, "
      "backend = excluded.backend, gpus = excluded.gpus, slots = excluded.slots, devices = "
      "excluded.devices, state = CASE WHEN workers.state = 'draining' THEN 'draining' ELSE "
      "'active' END, "
      "last_heartbeat_ms = excluded.last_heartbeat_ms");
  up.bind(1, w.id)
      .bind(2, w.hostname)
      .bind(3, w.backend)
      .bind(4, w.gpus)
      .bind(5, w.slots)
      .bind(6, w.devices_json)
      .bind(7, now_ms)
      .bind(8, w.allocation)
      .bind(9, w.registered_by);
  up.run();
  // Keep the jobs it still runs when their attempt is still current and nobody else holds them.
  std::vector<JobRef> rejected;
  Statement keep(
      db_.handle(),
      with_job_states(
          "UPDATE jobs SET worker_id = ?, lease_expiry_ms = ?, updated_ms = ? WHERE id = ? AND "
          "attempt = ? AND state IN ({ASSIGNED}, {RUNNING}) AND (worker_id = ? OR worker_id IS "
          "NULL)")
          .c_str());
  for (const JobRef& r : running) {
    keep.bind(1, w.id)
        .bind(2, now_ms + lease_ms)
        .bind(3, now_ms)
        .bind(4, r.job_id)
        .bind(5, r.attempt)
        .bind(6, w.id);
    keep.run();
    if (db_.changes() == 0) rejected.push_back(r);
  }
  // Jobs leased to this worker id that it no longer runs (it restarted): back to the queue.
  Statement orphan(
      db_.handle(),
      with_job_states(
          "SELECT id, attempt FROM jobs WHERE worker_id = ? AND state IN ({ASSIGNED}, {RUNNING})")
          .c_str());
  orphan.bind(1, w.id);
  std::vector<JobRef> orphans;
  while (orphan.step()) {
    JobRef r{orphan.int64(0), int(orphan.int64(1))};
    if (std::none_of(running.begin(), running.end(),
                     [&](const JobRef& x) { return x.job_id == r.job_id; }))
      orphans.push_back(r);
  }
  Statement requeue(
      db_.handle(),
      with_job_states(
          "UPDATE jobs SET state = {PENDING}, worker_id = NULL, message = 'worker restarted', "
          "updated_ms = ? WHERE id = ?")
          .c_str());
  for (const JobRef& r : orphans) {
    requeue.bind(1, now_ms).bind(2, r.job_id);
    requeue.run();
  }
  tx.commit();
  return rejected;
}

std::optional<JobRow> Store::acquire_job(const std::string& worker_id,
                                         const WorkerCapacity& capacity, int64_t now_ms,
                                         int64_t lease_ms, int max_running_per_user) {
  std::lock_guard lock(mu_);
  Transaction tx(db_);
  {
    Statement w(db_.handle(), "SELECT state FROM workers WHERE id = ?");
    w.bind(1, worker_id);
    if (!w.step() || w.text(0) != "active") return std::nullopt;  // unknown, draining or lost
  }
  RunningJobs running;
  {
    Statement a(db_.handle(),
                with_job_states("SELECT j.sweep_id, s.owner, COUNT(*) FROM jobs j JOIN sweeps s ON "
                                "s.id = j.sweep_id WHERE j.state IN ({ASSIGNED}, {RUNNING}) GROUP "
                                "BY j.sweep_id")
                    .c_str());
    while (a.step()) {
      running.by_sweep[a.int64(0)] = int(a.int64(2));
      running.by_owner[a.text(1)] += int(a.int64(2));
    }
  }
  std::vector<PendingJob> pending;
  {
    // One candidate per sweep, its first pending job: the scheduler's rules (scheduler.h) pick
    // among sweeps, so a sweep at its max_concurrency with a huge queue cannot hide later sweeps.
    Statement p(
        db_.handle(),
        with_job_states(
            "SELECT j.id, j.sweep_id, j.idx, s.priority, s.max_concurrency, j.backend, j.gpus, "
            "s.owner FROM "
            "(SELECT sweep_id, MIN(idx) AS first FROM jobs WHERE state = {PENDING} AND backend = "
            "?1 GROUP BY sweep_id) f "
            "JOIN jobs j ON j.sweep_id = f.sweep_id AND j.idx = f.first JOIN sweeps s ON s.id = "
            "j.sweep_id")
            .c_str());
    p.bind(1, capacity.backend);
    while (p.step())
      pending.push_back({p.int64(0), p.int64(1), int(p.int64(2)), int(p.int64(3)), int(p.int64(4)),
                         p.text(5), int(p.int64(6)), p.text(7)});
  }
  const auto pick = pick_job(pending, running, capacity, max_running_per_user);
  if (!pick) return std::nullopt;
  Statement u(db_.handle(), with_job_states("UPDATE jobs SET state = {ASSIGNED}, attempt = attempt "
                                            "+ 1, worker_id = ?, lease_expiry_ms = ?, "
                                            "cancel_requested = 0, updated_ms = ? WHERE id = ?")
                                .c_str());
  u.bind(1, worker_id).bind(2, now_ms + lease_ms).bind(3, now_ms).bind(4, pick->job_id);
  u.run();
  auto rows = query_jobs("id = ?", pick->job_id);
  tx.commit();
  return rows.at(0);
}

HeartbeatResult Store::heartbeat(const std::string& worker_id,
                                 const std::vector<std::pair<JobRef, int64_t>>& progress,
                                 int64_t now_ms, int64_t lease_ms) {
  std::lock_guard lock(mu_);
  Transaction tx(db_);
  HeartbeatResult result;
  Statement w(db_.handle(),
              "UPDATE workers SET last_heartbeat_ms = ?, state = CASE WHEN state = 'lost' THEN "
              "'active' ELSE state END WHERE id = ?");
  w.bind(1, now_ms).bind(2, worker_id);
  w.run();
  if (db_.changes() == 0) {
    result.known = false;
    return result;
  }
  {
    Statement d(db_.handle(), "SELECT state FROM workers WHERE id = ?");
    d.bind(1, worker_id);
    result.drain = d.step() && d.text(0) == "draining";
  }
  Statement renew(db_.handle(),
                  with_job_states("UPDATE jobs SET lease_expiry_ms = ?, step = MAX(step, ?) WHERE "
                                  "id = ? AND attempt = ? AND "
                                  "worker_id = ? AND state IN ({ASSIGNED}, {RUNNING})")
                      .c_str());
  Statement cancel(db_.handle(), "SELECT cancel_requested FROM jobs WHERE id = ?");
  for (const auto& [ref, step] : progress) {
    renew.bind(1, now_ms + lease_ms)
        .bind(2, step)
        .bind(3, ref.job_id)
        .bind(4, ref.attempt)
        .bind(5, worker_id);
    renew.run();
    if (db_.changes() == 0) {
      result.stale.push_back(ref);
      continue;
    }
    cancel.bind(1, ref.job_id);
    if (cancel.step() && cancel.int64(0) != 0) result.cancel.push_back(ref);
    cancel.reset();
  }
  tx.commit();
  return result;
}

Fence Store::fence(const JobRef& ref) {
  Statement q(db_.handle(), "SELECT attempt, state FROM jobs WHERE id = ?");
  q.bind(1, ref.job_id);
  if (!q.step()) return Fence::kUnknownJob;
  if (q.int64(0) != ref.attempt || !is_active(parse_job_state(q.text(1)))) return Fence::kStale;
  return Fence::kOk;
}

Fence Store::store_metrics(const JobRef& ref, const std::vector<MetricRow>& points,
                           const std::vector<EvalRow>& evals, int64_t resumed_from_step,
                           int64_t now_ms, const std::vector<NamedSeries>& named) {
  std::lock_guard lock(mu_);
  Transaction tx(db_);
  const Fence f = fence(ref);
  if (f != Fence::kOk) return f;
  if (resumed_from_step >= 0) {
    // A resumed attempt replaces whatever an earlier attempt stored after its checkpoint.
    series_->truncate_after(ref.job_id, resumed_from_step);
    Statement d(db_.handle(), "DELETE FROM eval_points WHERE job_id = ? AND step > ?");
    d.bind(1, ref.job_id).bind(2, resumed_from_step);
    d.run();
  }
  // The fixed fields of a step, one series each; the spike flag rides on the loss.
  for (const auto& [metric, name, field] : kStepFields) {
    std::vector<SeriesPoint> series;
    series.reserve(points.size());
    for (const MetricRow& m : points)
      series.push_back({m.step, m.*field, metric == Metric::kTrainLoss && m.spike});
    series_->write(ref.job_id, metric, std::move(series));
  }
  for (const NamedSeries& n : named)
    series_->write(ref.job_id, MetricId(series_->metric_id(n.name)), n.points);
  // A replayed eval carries no wall-clock time (NaN binds as NULL): it keeps the one stored.
  Statement ev(db_.handle(),
               "INSERT INTO eval_points(job_id, step, val_loss, tokens, elapsed_s, train_s) "
               "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(job_id, step) DO UPDATE SET "
               "val_loss = excluded.val_loss, tokens = excluded.tokens, "
               "elapsed_s = COALESCE(excluded.elapsed_s, elapsed_s), "
               "train_s = COALESCE(excluded.train_s, train_s)");
  for (const EvalRow& e : evals) {
    ev.bind(1, ref.job_id)
        .bind(2, e.step)
        .bind(3, e.val_loss)
        .bind(4, e.tokens)
        .bind(5, e.elapsed_s)
        .bind(6, e.train_s);
    ev.run();
  }
  Statement upd(db_.handle(),
                with_job_states("UPDATE jobs SET state = {RUNNING}, step = MAX(step, ?1), "
                                "last_train_loss = COALESCE(?2, last_train_loss), last_val_loss = "
                                "COALESCE(?3, last_val_loss), "
                                "updated_ms = ?4 WHERE id = ?5")
                    .c_str());
  const MetricRow* last = points.empty() ? nullptr : &points.back();
  upd.bind(1, last ? last->step : 0);
  if (last)
    upd.bind(2, last->train_loss);
  else
    upd.bind_null(2);
  if (!evals.empty())
    upd.bind(3, evals.back().val_loss);
  else
    upd.bind_null(3);
  upd.bind(4, now_ms).bind(5, ref.job_id);
  upd.run();
  tx.commit();
  return Fence::kOk;
}

Fence Store::complete_job(const JobRef& ref, JobState state, const std::string& message,
                          const std::string& summary_json, int64_t now_ms, bool retryable) {
  std::lock_guard lock(mu_);
  Transaction tx(db_);
  const Fence f = fence(ref);
  if (f != Fence::kOk) return f;
  if (state != JobState::kPending && !is_terminal(state))
    throw std::invalid_argument(std::string("a job cannot complete as ") + job_state_name(state));
  JobState next = state;
  std::string why = message;
  if (state == JobState::kCancelled) {  // an early stop the worker carried out
    Statement q(db_.handle(), "SELECT stop_reason FROM jobs WHERE id = ?");
    q.bind(1, ref.job_id);
    if (q.step() && !q.text(0).empty()) {
      next = JobState::kStopped;
      why = q.text(0);
    }
  }
  int failure = 0;
  if (state == JobState::kFailed) {
    failure = 1;
    Statement q(db_.handle(), "SELECT failures + 1 < max_attempts FROM jobs WHERE id = ?");
    q.bind(1, ref.job_id);
    if (retryable && q.step() && q.int64(0))
      next = JobState::kPending;  // retried, resuming from its checkpoint
  }
  Statement u(
      db_.handle(),
      with_job_states(
          "UPDATE jobs SET state = ?, failures = failures + ?, message = ?, updated_ms = ?, "
          "worker_id = CASE WHEN ? = {PENDING} THEN NULL ELSE worker_id END, spikes = ? WHERE id = "
          "?")
          .c_str());
  // Loss spikes are events: runs of consecutive flagged steps, counted once each.
  const int spikes = series_->flag_events(ref.job_id, Metric::kTrainLoss);
  const std::string next_name = job_state_name(next);
  u.bind(1, next_name)
      .bind(2, failure)
      .bind(3, why)
      .bind(4, now_ms)
      .bind(5, next_name)
      .bind(6, spikes)
      .bind(7, ref.job_id);
  u.run();
  if (!summary_json.empty()) {
    Statement s(db_.handle(),
                "INSERT OR REPLACE INTO run_summaries(job_id, attempt, summary) VALUES (?, ?, ?)");
    s.bind(1, ref.job_id).bind(2, ref.attempt).bind(3, summary_json);
    s.run();
  }
  tx.commit();
  return Fence::kOk;
}

bool Store::drain_worker(const std::string& worker_id) {
  std::lock_guard lock(mu_);
  Statement u(db_.handle(), "UPDATE workers SET state = 'draining' WHERE id = ?");
  u.bind(1, worker_id);
  u.run();
  return db_.changes() > 0;
}

bool Store::worker_left(const std::string& worker_id, int64_t now_ms) {
  std::lock_guard lock(mu_);
  Statement u(db_.handle(),
              with_job_states("UPDATE workers SET state = 'left', last_heartbeat_ms = ? WHERE id = "
                              "? AND NOT EXISTS (SELECT 1 FROM jobs WHERE worker_id = workers.id "
                              "AND state IN ({ASSIGNED}, {RUNNING}))")
                  .c_str());
  u.bind(1, now_ms).bind(2, worker_id);
  u.run();
  return db_.changes() > 0;
}

namespace {
constexpr const char* kWorkerColumns =
    "id, hostname, backend, gpus, slots, devices, state, last_heartbeat_ms, allocation, "
    "registered_by";
WorkerRow read_worker(const Statement& q) {
  return WorkerRow{q.text(0),
                   q.text(1),
                   q.text(2),
                   int(q.int64(3)),
                   int(q.int64(4)),
                   q.text(5),
                   parse_worker_state(q.text(6)),
                   q.int64(7),
                   {},
                   q.text(8),
                   q.text(9)};
}
}  // namespace

std::optional<WorkerRow> Store::worker(const std::string& id) {
  std::lock_guard lock(mu_);
  Statement q(db_.handle(),
              (std::string("SELECT ") + kWorkerColumns + " FROM workers WHERE id = ?").c_str());
  q.bind(1, id);
  if (!q.step()) return std::nullopt;
  return read_worker(q);
}

std::vector<WorkerRow> Store::workers() {
  std::lock_guard lock(mu_);
  std::vector<WorkerRow> out;
  Statement q(db_.handle(),
              (std::string("SELECT ") + kWorkerColumns + " FROM workers ORDER BY id").c_str());
  Statement j(db_.handle(), with_job_states("SELECT id FROM jobs WHERE worker_id = ? AND state IN "
                                            "({ASSIGNED}, {RUNNING}) ORDER BY id")
                                .c_str());
  while (q.step()) {
    WorkerRow w = read_worker(q);
    j.bind(1, w.id);
    while (j.step()) w.job_ids.push_back(j.int64(0));
    j.reset();
    out.push_back(std::move(w));
  }
  return out;
}

int Store::expire_leases(int64_t now_ms, int64_t lost_after_ms) {
  std::lock_guard lock(mu_);
  Transaction tx(db_);
  Statement f(
      db_.handle(),
      with_job_states("UPDATE jobs SET state = CASE WHEN failures + 1 >= max_attempts THEN "
                      "{FAILED} ELSE {PENDING} END, "
                      "failures = failures + 1, worker_id = NULL, updated_ms = ?1, "
                      "message = 'lease lost (worker ' || COALESCE(worker_id, '?') || ' silent)' "
                      "WHERE state IN ({ASSIGNED}, {RUNNING}) AND lease_expiry_ms < ?1")
          .c_str());
  f.bind(1, now_ms);
  f.run();
  const int n = int(db_.changes());
  Statement w(db_.handle(),
              "UPDATE workers SET state = 'lost' WHERE state IN ('active', 'draining') AND "
              "last_heartbeat_ms < ?");
  w.bind(1, now_ms - lost_after_ms);
  w.run();
  tx.commit();
  return n;
}

void Store::extend_leases(int64_t until_ms) {
  std::lock_guard lock(mu_);
  Statement u(db_.handle(),
              with_job_states("UPDATE jobs SET lease_expiry_ms = MAX(lease_expiry_ms, ?) WHERE "
                              "state IN ({ASSIGNED}, {RUNNING})")
                  .c_str());
  u.bind(1, until_ms);
  u.run();
}

std::vector<MetricRow> Store::metric_points(int64_t job_id) {
  std::lock_guard lock(mu_);
  std::map<int64_t, MetricRow> rows;
  for (const auto& [metric, name, field] : kStepFields)
    for (const SeriesPoint& p : series_->read(job_id, metric)) {
      MetricRow& row = rows[p.step];
      row.step = p.step;
      row.*field = p.value;
      if (metric == Metric::kTrainLoss) row.spike = p.flagged;
    }
  std::vector<MetricRow> out;
  out.reserve(rows.size());
  for (auto& [step, row] : rows) out.push_back(row);
  return out;
}

std::vector<EvalRow> Store::eval_points(int64_t job_id) {
  std::lock_guard lock(mu_);
  std::vector<EvalRow> out;
  Statement q(db_.handle(),
              "SELECT step, val_loss, tokens, elapsed_s, train_s FROM eval_points WHERE job_id = ? "
              "ORDER BY step");
  q.bind(1, job_id);
  while (q.step()) out.push_back({q.int64(0), q.real(1), q.real(2), q.real(3), q.real(4)});
  return out;
}

std::map<int64_t, std::vector<EvalRow>> Store::sweep_eval_points(int64_t sweep_id) {
  std::lock_guard lock(mu_);
  std::map<int64_t, std::vector<EvalRow>> out;
  Statement q(db_.handle(),
              "SELECT e.job_id, e.step, e.val_loss, e.tokens, e.elapsed_s, e.train_s "
              "FROM eval_points e JOIN jobs j ON j.id = e.job_id WHERE j.sweep_id = ? "
              "ORDER BY e.job_id, e.step");
  q.bind(1, sweep_id);
  while (q.step())
    out[q.int64(0)].push_back({q.int64(1), q.real(2), q.real(3), q.real(4), q.real(5)});
  return out;
}

std::vector<CurveBucket> Store::downsampled_curve(int64_t job_id, int buckets) {
  return downsampled_curves({job_id}, buckets)[job_id];
}

std::map<int64_t, std::vector<CurveBucket>> Store::downsampled_curves(
    const std::vector<int64_t>& job_ids, int buckets) {
  std::lock_guard lock(mu_);
  return downsample_many(job_ids, Metric::kTrainLoss, buckets);
}

std::map<int64_t, std::vector<CurveBucket>> Store::downsample_many(
    const std::vector<int64_t>& job_ids, MetricId metric, int buckets) {
  Transaction tx(db_, Transaction::kRead);  // one consistent view of every curve
  std::map<int64_t, std::vector<CurveBucket>> out;
  for (int64_t id : job_ids) out[id] = series_->downsample(id, metric, buckets);
  tx.commit();
  return out;
}

std::map<int64_t, std::string> Store::summaries(int64_t sweep_id) {
  std::lock_guard lock(mu_);
  std::map<int64_t, std::string> out;
  Statement q(db_.handle(),
              "SELECT r.job_id, r.summary FROM run_summaries r JOIN jobs j ON j.id = r.job_id "
              "WHERE j.sweep_id = ?");
  q.bind(1, sweep_id);
  while (q.step()) out[q.int64(0)] = q.text(1);
  return out;
}

std::optional<std::map<int64_t, std::vector<CurveBucket>>> Store::downsampled_metric(
    const std::vector<int64_t>& job_ids, const std::string& name, int buckets) {
  std::lock_guard lock(mu_);
  const std::optional<int64_t> id = series_->find_metric(name);
  if (!id || *id <= int64_t(Metric::kElapsedSeconds))
    return std::nullopt;  // fixed fields have their own routes
  return downsample_many(job_ids, MetricId(*id), buckets);
}

std::vector<SeriesPoint> Store::named_metric_points(int64_t job_id, const std::string& name) {
  std::lock_guard lock(mu_);
  const std::optional<int64_t> id = series_->find_metric(name);
  if (!id || *id <= int64_t(Metric::kElapsedSeconds)) return {};
  return series_->read(job_id, MetricId(*id));
}

std::vector<std::string> Store::metric_names(int64_t job_id) {
  std::lock_guard lock(mu_);
  return series_->metric_names(job_id);
}

std::map<JobState, int> Store::job_counts_by_state() {
  std::lock_guard lock(mu_);
  std::map<JobState, int> out;
  Statement q(db_.handle(), "SELECT state, COUNT(*) FROM jobs GROUP BY state");
  while (q.step()) out[parse_job_state(q.text(0))] = int(q.int64(1));
  return out;
}

int64_t Store::metric_point_count() {
  std::lock_guard lock(mu_);
  return series_->point_count(Metric::kTrainLoss);
}

}  // namespace server
