#include "server/storage/worker_store.h"

#include <algorithm>

#include "server/storage/fork_rows.h"

namespace server {

std::vector<JobRef> WorkerStore::register_worker(const WorkerRow& w,
                                                 const std::vector<JobRef>& running, int64_t now_ms,
                                                 int64_t lease_ms) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Transaction tx(db);
  Statement up(
      db.handle(),
      "INSERT INTO workers(id, hostname, backend, gpus, slots, devices, state, last_heartbeat_ms, "
      "allocation, registered_by) VALUES (?, ?, ?, ?, ?, ?, 'active', ?, ?, ?) ON CONFLICT(id) DO "
      "UPDATE SET registered_by = excluded.registered_by, leaving = 0, "
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
      db.handle(),
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
    if (db.changes() == 0) rejected.push_back(r);
  }
  // Jobs leased to this worker id that it no longer runs (it restarted): back to the queue.
  Statement orphan(
      db.handle(),
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
      db.handle(),
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

std::optional<JobRow> WorkerStore::acquire_job(const std::string& worker_id,
                                               const WorkerCapacity& capacity, int64_t now_ms,
                                               int64_t lease_ms, int max_running_per_user) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Transaction tx(db);
  {
    Statement w(db.handle(), "SELECT state, leaving FROM workers WHERE id = ?");
    w.bind(1, worker_id);
    if (!w.step() || w.text(0) != "active" || w.int64(1) != 0)
      return std::nullopt;  // unknown, draining, lost or leaving
  }
  RunningJobs running;
  {
    Statement a(db.handle(),
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
        db.handle(),
        with_job_states(
            "SELECT j.id, j.sweep_id, j.idx, s.priority, s.max_concurrency, j.backend, j.gpus, "
            "s.owner FROM "
            "(SELECT sweep_id, MIN(idx) AS first FROM jobs WHERE state = {PENDING} AND backend = "
            "?1 AND " +
            std::string(kForkIsReady) +
            " GROUP BY sweep_id) f "
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
  Statement u(db.handle(), with_job_states("UPDATE jobs SET state = {ASSIGNED}, attempt = attempt "
                                           "+ 1, worker_id = ?, lease_expiry_ms = ?, "
                                           "cancel_requested = 0, updated_ms = ? WHERE id = ?")
                               .c_str());
  u.bind(1, worker_id).bind(2, now_ms + lease_ms).bind(3, now_ms).bind(4, pick->job_id);
  u.run();
  auto rows = query_jobs(db, "id = ?", pick->job_id);
  tx.commit();
  return rows.at(0);
}

HeartbeatResult WorkerStore::heartbeat(const std::string& worker_id,
                                       const std::vector<std::pair<JobRef, int64_t>>& progress,
                                       int64_t now_ms, int64_t lease_ms) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Transaction tx(db);
  HeartbeatResult result;
  Statement w(db.handle(),
              "UPDATE workers SET last_heartbeat_ms = ?, state = CASE WHEN state = 'lost' THEN "
              "'active' ELSE state END WHERE id = ?");
  w.bind(1, now_ms).bind(2, worker_id);
  w.run();
  if (db.changes() == 0) {
    result.known = false;
    return result;
  }
  {
    Statement d(db.handle(), "SELECT state FROM workers WHERE id = ?");
    d.bind(1, worker_id);
    result.drain = d.step() && d.text(0) == "draining";
  }
  Statement renew(db.handle(),
                  with_job_states("UPDATE jobs SET lease_expiry_ms = ?, step = MAX(step, ?) WHERE "
                                  "id = ? AND attempt = ? AND "
                                  "worker_id = ? AND state IN ({ASSIGNED}, {RUNNING})")
                      .c_str());
  Statement cancel(db.handle(), "SELECT cancel_requested FROM jobs WHERE id = ?");
  Statement fork_ready(db.handle(),
                       with_job_states("SELECT 1 FROM job_forks f JOIN jobs c ON c.id = f.job_id "
                                       "WHERE f.parent_job_id = ? AND f.branch_step < ? AND "
                                       "c.state = {PENDING} LIMIT 1")
                           .c_str());
  for (const auto& [ref, step] : progress) {
    renew.bind(1, now_ms + lease_ms)
        .bind(2, step)
        .bind(3, ref.job_id)
        .bind(4, ref.attempt)
        .bind(5, worker_id);
    renew.run();
    if (db.changes() == 0) {
      result.stale.push_back(ref);
      continue;
    }
    cancel.bind(1, ref.job_id);
    if (cancel.step() && cancel.int64(0) != 0) result.cancel.push_back(ref);
    cancel.reset();
    fork_ready.bind(1, ref.job_id).bind(2, step);
    result.forks_ready = fork_ready.step() || result.forks_ready;
    fork_ready.reset();
  }
  tx.commit();
  return result;
}

Fence WorkerStore::complete_job(const JobRef& ref, JobState state, const std::string& message,
                                const std::string& summary_json, int64_t now_ms, bool retryable) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  SeriesStore& series = database_.series();
  Transaction tx(db);
  const Fence f = fence(db, ref);
  if (f != Fence::kOk) return f;
  if (state != JobState::kPending && !is_terminal(state))
    throw std::invalid_argument(std::string("a job cannot complete as ") + job_state_name(state));
  JobState next = state;
  std::string why = message;
  if (state == JobState::kCancelled) {  // an early stop the worker carried out
    Statement q(db.handle(), "SELECT stop_reason FROM jobs WHERE id = ?");
    q.bind(1, ref.job_id);
    if (q.step() && !q.text(0).empty()) {
      next = JobState::kStopped;
      why = q.text(0);
    }
  }
  int failure = 0;
  if (state == JobState::kFailed) {
    failure = 1;
    Statement q(db.handle(), "SELECT failures + 1 < max_attempts FROM jobs WHERE id = ?");
    q.bind(1, ref.job_id);
    if (retryable && q.step() && q.int64(0))
      next = JobState::kPending;  // retried, resuming from its checkpoint
  }
  Statement u(
      db.handle(),
      with_job_states(
          "UPDATE jobs SET state = ?, failures = failures + ?, message = ?, updated_ms = ?, "
          "worker_id = CASE WHEN ? = {PENDING} THEN NULL ELSE worker_id END, spikes = ? WHERE id = "
          "?")
          .c_str());
  // Loss spikes are events: runs of consecutive flagged steps, counted once each.
  const int spikes =
      int(series.flag_events(curve_segments(db, ref.job_id), Metric::kTrainLoss).size());
  const std::string next_name = job_state_name(next);
  u.bind(1, next_name)
      .bind(2, failure)
      .bind(3, why)
      .bind(4, now_ms)
      .bind(5, next_name)
      .bind(6, spikes)
      .bind(7, ref.job_id);
  u.run();
  end_forks_of_ended_parents(db, now_ms);
  if (!summary_json.empty()) {
    Statement s(db.handle(),
                "INSERT OR REPLACE INTO run_summaries(job_id, attempt, summary) VALUES (?, ?, ?)");
    s.bind(1, ref.job_id).bind(2, ref.attempt).bind(3, summary_json);
    s.run();
  }
  tx.commit();
  return Fence::kOk;
}

std::vector<ReuseCandidate> WorkerStore::reuse_candidates(int64_t job_id) {
  MutexLock lock(database_.mutex());
  return server::reuse_candidates(database_.db(), job_id);
}

Fence WorkerStore::complete_reused(const JobRef& ref, int64_t source, int64_t now_ms) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Transaction tx(db);
  const Fence f = fence(db, ref);
  if (f != Fence::kOk) return f;
  if (take_reused_run(db, ref.job_id, source, now_ms) == ReuseClaim::kNotACandidate) {
    Statement u(db.handle(),
                with_job_states("UPDATE jobs SET state = {FAILED}, failures = failures + 1, "
                                "message = ?, updated_ms = ? WHERE id = ?")
                    .c_str());
    u.bind(1, "its worker reported reusing job " + std::to_string(source) +
                  ", which is not a finished run of the same config, data and trainer")
        .bind(2, now_ms)
        .bind(3, ref.job_id);
    u.run();
    end_forks_of_ended_parents(db, now_ms);
  }
  tx.commit();
  return Fence::kOk;
}

bool WorkerStore::set_leaving(const std::string& worker_id) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Statement u(db.handle(), "UPDATE workers SET leaving = 1 WHERE id = ? AND leaving = 0");
  u.bind(1, worker_id);
  u.run();
  return db.changes() > 0;
}

bool WorkerStore::is_leaving(const std::string& worker_id) {
  MutexLock lock(database_.mutex());
  Statement q(database_.db().handle(), "SELECT leaving FROM workers WHERE id = ?");
  q.bind(1, worker_id);
  return q.step() && q.int64(0) != 0;
}

bool WorkerStore::drain_worker(const std::string& worker_id) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Statement u(db.handle(), "UPDATE workers SET state = 'draining' WHERE id = ?");
  u.bind(1, worker_id);
  u.run();
  return db.changes() > 0;
}

bool WorkerStore::worker_left(const std::string& worker_id, int64_t now_ms) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Statement u(db.handle(),
              with_job_states("UPDATE workers SET state = 'left', last_heartbeat_ms = ? WHERE id = "
                              "? AND NOT EXISTS (SELECT 1 FROM jobs WHERE worker_id = workers.id "
                              "AND state IN ({ASSIGNED}, {RUNNING}))")
                  .c_str());
  u.bind(1, now_ms).bind(2, worker_id);
  u.run();
  return db.changes() > 0;
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

std::optional<WorkerRow> WorkerStore::worker(const std::string& id) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Statement q(db.handle(),
              (std::string("SELECT ") + kWorkerColumns + " FROM workers WHERE id = ?").c_str());
  q.bind(1, id);
  if (!q.step()) return std::nullopt;
  return read_worker(q);
}

std::vector<WorkerRow> WorkerStore::workers() {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  std::vector<WorkerRow> out;
  Statement q(db.handle(),
              (std::string("SELECT ") + kWorkerColumns + " FROM workers ORDER BY id").c_str());
  Statement j(db.handle(), with_job_states("SELECT id FROM jobs WHERE worker_id = ? AND state IN "
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

int WorkerStore::expire_leases(int64_t now_ms, int64_t lost_after_ms) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Transaction tx(db);
  Statement f(
      db.handle(),
      with_job_states("UPDATE jobs SET state = CASE WHEN failures + 1 >= max_attempts THEN "
                      "{FAILED} ELSE {PENDING} END, "
                      "failures = failures + 1, worker_id = NULL, updated_ms = ?1, "
                      "message = 'lease lost (worker ' || COALESCE(worker_id, '?') || ' silent)' "
                      "WHERE state IN ({ASSIGNED}, {RUNNING}) AND lease_expiry_ms < ?1")
          .c_str());
  f.bind(1, now_ms);
  f.run();
  const int n = int(db.changes());
  end_forks_of_ended_parents(db, now_ms);
  Statement w(db.handle(),
              "UPDATE workers SET state = 'lost' WHERE state IN ('active', 'draining') AND "
              "last_heartbeat_ms < ?");
  w.bind(1, now_ms - lost_after_ms);
  w.run();
  tx.commit();
  return n;
}

void WorkerStore::extend_leases(int64_t until_ms) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Statement u(db.handle(),
              with_job_states("UPDATE jobs SET lease_expiry_ms = MAX(lease_expiry_ms, ?) WHERE "
                              "state IN ({ASSIGNED}, {RUNNING})")
                  .c_str());
  u.bind(1, until_ms);
  u.run();
}

}  // namespace server
