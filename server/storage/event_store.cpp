#include "server/storage/event_store.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <utility>

namespace server {

namespace {

constexpr const char* kQueuedThrough = "queued-through";
constexpr const char* kNoWorkerSince = "no-worker-since";

int64_t mark(Database& db, const char* name) {
  Statement q(db.handle(), "SELECT value FROM event_marks WHERE name = ?");
  q.bind(1, std::string(name));
  return q.step() ? q.int64(0) : 0;
}

void set_mark(Database& db, const char* name, int64_t value) {
  Statement s(db.handle(),
              "INSERT INTO event_marks(name, value) VALUES (?, ?) "
              "ON CONFLICT(name) DO UPDATE SET value = excluded.value");
  s.bind(1, std::string(name)).bind(2, value).run();
}

// Inserts one event; false when `once_key` was used before.
bool insert_event(Database& db, const EventRow& e, const std::string& once_key) {
  Statement s(db.handle(),
              "INSERT OR IGNORE INTO events(at_ms, kind, sweep_id, text, detail, once_key) "
              "VALUES (?, ?, ?, ?, ?, ?)");
  s.bind(1, e.at_ms).bind(2, std::string(trainer_core::name_of(e.kind)));
  if (e.sweep_id)
    s.bind(3, *e.sweep_id);
  else
    s.bind_null(3);
  s.bind(4, e.text).bind(5, e.detail_json.empty() ? std::string("{}") : e.detail_json);
  if (once_key.empty())
    s.bind_null(6);
  else
    s.bind(6, once_key);
  s.run();
  return db.changes() > 0;
}

// Keeps the newest kMaxEvents events and the deliveries of those kept.
void prune_events(Database& db) {
  Statement old(db.handle(), "DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?");
  old.bind(1, int64_t(EventStore::kMaxEvents)).run();
  if (db.changes() == 0) return;
  db.exec("DELETE FROM event_deliveries WHERE event_id < (SELECT MIN(id) FROM events)");
}

EventRow read_event(const Statement& q, int first) {
  EventRow e;
  e.id = q.int64(first);
  e.at_ms = q.int64(first + 1);
  const std::string kind = q.text(first + 2);
  const std::optional<EventKind> parsed = trainer_core::parse_name<EventKind>(kind);
  if (!parsed) throw std::invalid_argument("stored event of unknown kind '" + kind + "'");
  e.kind = *parsed;
  if (!q.is_null(first + 3)) e.sweep_id = q.int64(first + 3);
  e.text = q.text(first + 4);
  e.detail_json = q.text(first + 5);
  return e;
}

constexpr const char* kEventColumns = "e.id, e.at_ms, e.kind, e.sweep_id, e.text, e.detail";

}  // namespace

bool EventStore::append(const EventRow& event, const std::string& once_key) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Transaction tx(db);
  const bool added = insert_event(db, event, once_key);
  if (added) prune_events(db);
  tx.commit();
  return added;
}

EventNews EventStore::unannounced(int max_failed) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Transaction tx(db, Transaction::kRead);
  EventNews news;
  Statement failed(
      db.handle(),
      with_job_states("SELECT id, sweep_id, seed, label, message, updated_ms FROM jobs "
                      "WHERE state = {FAILED} AND updated_ms > failure_announced_ms "
                      "ORDER BY updated_ms, id LIMIT ?")
          .c_str());
  failed.bind(1, int64_t(std::max(1, max_failed)));
  while (failed.step())
    news.failed.push_back({failed.int64(0), failed.int64(1), failed.int64(2), failed.text(3),
                           failed.text(4), failed.int64(5)});
  // A sweep is finished when its planner is done and none of its jobs waits or runs; it is news
  // when a job changed after the last announcement (a retry reopens and refinishes it).
  Statement finished(
      db.handle(),
      with_job_states("SELECT s.id, s.name, MAX(j.updated_ms) FROM sweeps s JOIN jobs j ON "
                      "j.sweep_id = s.id WHERE s.planning_open = 0 GROUP BY s.id HAVING "
                      "SUM(j.state IN ({PENDING}, {ASSIGNED}, {RUNNING})) = 0 AND "
                      "MAX(j.updated_ms) > MAX(s.finish_announced_ms) ORDER BY s.id")
          .c_str());
  while (finished.step())
    news.finished.push_back({finished.int64(0), finished.text(1), {}, finished.int64(2)});
  Statement counts(db.handle(),
                   "SELECT state, COUNT(*) FROM jobs WHERE sweep_id = ? GROUP BY state");
  for (FinishedSweep& s : news.finished) {
    counts.bind(1, s.sweep_id);
    while (counts.step()) s.jobs_by_state[parse_job_state(counts.text(0))] = int(counts.int64(1));
    counts.reset();
  }
  return news;
}

void EventStore::announce(const EventNews& news, const std::vector<EventRow>& events) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Transaction tx(db);
  for (const EventRow& e : events) insert_event(db, e, "");
  // The values read, not "now": a job that changed again since is news again.
  Statement job(db.handle(),
                "UPDATE jobs SET failure_announced_ms = MAX(failure_announced_ms, ?) WHERE id = ?");
  for (const FailedJob& j : news.failed) job.bind(1, j.failed_ms).bind(2, j.job_id).run();
  Statement sweep(
      db.handle(),
      "UPDATE sweeps SET finish_announced_ms = MAX(finish_announced_ms, ?) WHERE id = ?");
  for (const FinishedSweep& s : news.finished)
    sweep.bind(1, s.finished_ms).bind(2, s.sweep_id).run();
  prune_events(db);
  tx.commit();
}

std::vector<EventRow> EventStore::for_sweep(int64_t sweep_id, int64_t after_id, int limit) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Statement q(db.handle(),
              (std::string("SELECT ") + kEventColumns +
               " FROM events e WHERE e.id > ?1 AND (e.sweep_id = ?2 OR (e.sweep_id IS NULL AND "
               "e.at_ms >= (SELECT submitted_ms FROM sweeps WHERE id = ?2))) ORDER BY e.id DESC "
               "LIMIT ?3")
                  .c_str());
  q.bind(1, after_id).bind(2, sweep_id).bind(3, int64_t(std::max(1, limit)));
  std::vector<EventRow> out;
  while (q.step()) out.push_back(read_event(q, 0));
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<EventRow> EventStore::recent(int64_t before_id, int limit) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Statement q(db.handle(), (std::string("SELECT ") + kEventColumns +
                            " FROM events e WHERE ?1 = 0 OR e.id < ?1 ORDER BY e.id DESC LIMIT ?2")
                               .c_str());
  q.bind(1, before_id).bind(2, int64_t(std::max(1, limit)));
  std::vector<EventRow> out;
  while (q.step()) out.push_back(read_event(q, 0));
  return out;
}

EventStore::WorkerSilence EventStore::worker_silence() {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  WorkerSilence out;
  Statement heard(db.handle(), "SELECT COALESCE(MAX(last_heartbeat_ms), 0) FROM workers");
  if (heard.step()) out.last_heard_ms = heard.int64(0);
  Statement pending(
      db.handle(),
      with_job_states("SELECT MIN(updated_ms) FROM jobs WHERE state = {PENDING}").c_str());
  if (pending.step() && !pending.is_null(0)) out.oldest_pending_ms = pending.int64(0);
  out.announced_since_ms = mark(db, kNoWorkerSince);
  return out;
}

void EventStore::announce_silence(const EventRow& event, int64_t since_ms) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Transaction tx(db);
  insert_event(db, event, "");
  set_mark(db, kNoWorkerSince, since_ms);
  prune_events(db);
  tx.commit();
}

int EventStore::queue_deliveries(const std::vector<std::string>& urls, int64_t now_ms) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Transaction tx(db);
  const int64_t through = mark(db, kQueuedThrough);
  Statement q(db.handle(),
              "SELECT e.id, COALESCE(s.notify, '') FROM events e LEFT JOIN sweeps s ON s.id = "
              "e.sweep_id WHERE e.id > ? ORDER BY e.id");
  q.bind(1, through);
  Statement add(db.handle(),
                "INSERT INTO event_deliveries(event_id, url, state, next_attempt_ms) VALUES (?, ?, "
                "'pending', ?)");
  int queued = 0;
  int64_t last = through;
  while (q.step()) {
    last = q.int64(0);
    std::vector<std::string> targets = urls;
    if (const std::string own = q.text(1); !own.empty())
      for (const auto& u : nlohmann::json::parse(own)) targets.push_back(u.get<std::string>());
    std::sort(targets.begin(), targets.end());
    targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
    for (const std::string& url : targets) {
      add.bind(1, last).bind(2, url).bind(3, now_ms).run();
      ++queued;
    }
  }
  if (last != through) set_mark(db, kQueuedThrough, last);
  // The bound: beyond kMaxPendingPerUrl waiting for one URL, the oldest are given up.
  if (queued > 0) {
    Statement crowded(db.handle(),
                      "SELECT url, COUNT(*) - ? FROM event_deliveries WHERE state = 'pending' "
                      "GROUP BY url HAVING COUNT(*) > ?");
    crowded.bind(1, int64_t(kMaxPendingPerUrl)).bind(2, int64_t(kMaxPendingPerUrl));
    std::vector<std::pair<std::string, int64_t>> over;
    while (crowded.step()) over.emplace_back(crowded.text(0), crowded.int64(1));
    Statement give_up(db.handle(),
                      "UPDATE event_deliveries SET state = 'given-up', last_error = ? WHERE id IN "
                      "(SELECT id FROM event_deliveries WHERE state = 'pending' AND url = ? ORDER "
                      "BY id LIMIT ?)");
    for (const auto& [url, excess] : over)
      give_up
          .bind(1, "queue full: more than " + std::to_string(kMaxPendingPerUrl) +
                       " deliveries waited for this URL")
          .bind(2, url)
          .bind(3, excess)
          .run();
  }
  tx.commit();
  return queued;
}

std::vector<DueDelivery> EventStore::due_deliveries(int64_t now_ms, int limit) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Statement q(db.handle(),
              (std::string("SELECT d.id, d.attempts, d.url, ") + kEventColumns +
               " FROM event_deliveries d JOIN events e ON e.id = d.event_id WHERE d.state = "
               "'pending' AND d.next_attempt_ms <= ? ORDER BY d.next_attempt_ms, d.id LIMIT ?")
                  .c_str());
  q.bind(1, now_ms).bind(2, int64_t(std::max(1, limit)));
  std::vector<DueDelivery> out;
  while (q.step()) out.push_back({q.int64(0), int(q.int64(1)), q.text(2), read_event(q, 3)});
  return out;
}

void EventStore::delivered(int64_t delivery_id, int64_t now_ms) {
  MutexLock lock(database_.mutex());
  Statement s(database_.db().handle(),
              "UPDATE event_deliveries SET state = 'delivered', attempts = attempts + 1, "
              "next_attempt_ms = ?, last_error = '' WHERE id = ?");
  s.bind(1, now_ms).bind(2, delivery_id).run();
}

void EventStore::attempt_failed(int64_t delivery_id, const std::string& error,
                                std::optional<int64_t> retry_at_ms) {
  MutexLock lock(database_.mutex());
  Statement s(database_.db().handle(),
              "UPDATE event_deliveries SET state = ?, attempts = attempts + 1, next_attempt_ms = "
              "COALESCE(?, next_attempt_ms), last_error = ? WHERE id = ?");
  s.bind(1, std::string(retry_at_ms ? "pending" : "given-up"));
  if (retry_at_ms)
    s.bind(2, *retry_at_ms);
  else
    s.bind_null(2);
  s.bind(3, error.substr(0, 500)).bind(4, delivery_id).run();
}

std::map<DeliveryState, int64_t> EventStore::delivery_counts() {
  MutexLock lock(database_.mutex());
  std::map<DeliveryState, int64_t> out;
  for (const auto& [state, name] : names_of(DeliveryState{})) out[state] = 0;
  Statement q(database_.db().handle(),
              "SELECT state, COUNT(*) FROM event_deliveries GROUP BY state");
  while (q.step())
    if (const auto state = trainer_core::parse_name<DeliveryState>(q.text(0)))
      out[*state] = q.int64(1);
  return out;
}

}  // namespace server
