// Events and their webhook deliveries (migrations/017_events.sql): what happened that a researcher
// is told about, kept for sweepctl watch and the sweep page, and queued for delivery to webhook
// URLs with retries (server/events/ writes the events and delivers them; docs/deploy.md,
// "Notifications"). Every method is one transaction under the database's mutex (database.h).
// Bounds: the newest kMaxEvents events are kept, and at most kMaxPendingPerUrl deliveries wait
// per URL (older ones are given up as "queue full"), so a flood cannot grow the file.
// Lifetime: holds the CoordinatorDatabase by reference; main() keeps both alive (store.h).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "server/storage/database.h"
#include "server/storage/job_state.h"
#include "trainer_core/config/config_enums.h"

namespace server {

enum class EventKind { kSweepFinished, kJobsFailed, kHealthRule, kNoWorker };
// Names as stored (trainer_core::name_of / parse_name).
constexpr trainer_core::NameTable<EventKind, 4> names_of(EventKind) {
  return {{{EventKind::kSweepFinished, "sweep-finished"},
           {EventKind::kJobsFailed, "jobs-failed"},
           {EventKind::kHealthRule, "health-rule"},
           {EventKind::kNoWorker, "no-worker"}}};
}

struct EventRow {
  int64_t id = 0;  // assigned by append
  int64_t at_ms = 0;
  EventKind kind = EventKind::kSweepFinished;
  std::optional<int64_t> sweep_id;  // none: the coordinator's own
  std::string text;                 // one line for people
  std::string detail_json;          // the facts, as JSON
};

// News the store holds that no event has announced yet (unannounced()).
struct FinishedSweep {
  int64_t sweep_id = 0;
  std::string name;
  std::map<JobState, int> jobs_by_state;
  int64_t finished_ms = 0;  // its last job change
};
struct FailedJob {
  int64_t job_id = 0, sweep_id = 0, seed = 0;
  std::string label, message;
  int64_t failed_ms = 0;  // its updated_ms when read
};
struct EventNews {
  std::vector<FinishedSweep> finished;
  std::vector<FailedJob> failed;  // oldest first
  bool empty() const { return finished.empty() && failed.empty(); }
};

enum class DeliveryState { kPending, kDelivered, kGivenUp };
constexpr trainer_core::NameTable<DeliveryState, 3> names_of(DeliveryState) {
  return {{{DeliveryState::kPending, "pending"},
           {DeliveryState::kDelivered, "delivered"},
           {DeliveryState::kGivenUp, "given-up"}}};
}

// A delivery the notifier should attempt now.
struct DueDelivery {
  int64_t id = 0;
  int attempts = 0;  // before this one
  std::string url;
  EventRow event;
};

class EventStore {
 public:
  static constexpr int kMaxEvents = 10000;
  static constexpr int kMaxPendingPerUrl = 1000;

  explicit EventStore(CoordinatorDatabase& database) : database_(database) {}

  // Appends an event; with `once_key`, only the first event under that key is written (false for
  // a later one). Prunes the oldest events beyond kMaxEvents with their deliveries.
  bool append(const EventRow& event, const std::string& once_key = "");
  // Finished sweeps and jobs failed for good that no event has announced (at most `max_failed`
  // jobs, oldest first).
  EventNews unannounced(int max_failed = 10000);
  // Appends `events` and marks `news` announced, in one transaction: news is announced once,
  // across restarts, and never lost between reading and writing.
  void announce(const EventNews& news, const std::vector<EventRow>& events);
  // Events of a sweep and the coordinator's own since the sweep was submitted, with id > after_id,
  // the newest `limit` of them, oldest first.
  std::vector<EventRow> for_sweep(int64_t sweep_id, int64_t after_id, int limit);
  // The newest `limit` events of every sweep and the coordinator's own with an id below
  // `before_id` (0: the newest), newest first: the dashboard's events list.
  std::vector<EventRow> recent(int64_t before_id, int limit);
  // What the no-worker check reads: the last time any worker was heard from (0: never), the
  // oldest pending job's last change (nullopt: none pending) and the outage last announced (0:
  // none).
  struct WorkerSilence {
    int64_t last_heard_ms = 0;
    std::optional<int64_t> oldest_pending_ms;
    int64_t announced_since_ms = 0;
  };
  WorkerSilence worker_silence();
  // Appends a no-worker event and records `since_ms` as the outage announced, in one transaction.
  void announce_silence(const EventRow& event, int64_t since_ms);

  // Deliveries. queue_deliveries gives every event not yet queued a pending delivery to each of
  // `urls` and to its sweep's own URLs, due at `now_ms`; returns how many it queued.
  int queue_deliveries(const std::vector<std::string>& urls, int64_t now_ms);
  std::vector<DueDelivery> due_deliveries(int64_t now_ms, int limit);
  void delivered(int64_t delivery_id, int64_t now_ms);
  // A failed attempt: retried at `retry_at_ms`, or given up (nullopt) with `error`.
  void attempt_failed(int64_t delivery_id, const std::string& error,
                      std::optional<int64_t> retry_at_ms);
  // Deliveries by state, for /metrics and tests.
  std::map<DeliveryState, int64_t> delivery_counts();

 private:
  CoordinatorDatabase& database_;
};

}  // namespace server
