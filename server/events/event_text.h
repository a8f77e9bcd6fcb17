// The words and facts of each event (storage/event_store.h's EventRow): one line for people
// (what a chat message shows) and a JSON object of the facts for programs. A webhook's body is
// the event as JSON with a Slack-compatible "text" field (webhook_body).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "server/storage/event_store.h"

namespace server {

// At most this many failed jobs are named in one jobs-failed event's text (its detail lists up
// to kFailedJobsInDetail ids); the count is always whole.
constexpr size_t kFailedJobsNamed = 3;
constexpr size_t kFailedJobsInDetail = 100;

// One sweep-finished event per finished sweep, and one jobs-failed event per sweep for all of
// its newly failed jobs (a flood of failures is one event), stamped `now_ms`.
std::vector<EventRow> news_events(const EventNews& news, int64_t now_ms);

// A health rule that fired on a run; `reason` is the rule and what it saw (health.h).
EventRow health_event(int64_t sweep_id, int64_t job_id, const std::string& label,
                      const std::string& reason, int64_t now_ms);

// No worker heard from since `since_ms` while jobs wait.
EventRow no_worker_event(int64_t since_ms, int64_t now_ms);

// The JSON a webhook receives: {"text", "event_id", "kind", "at_ms", "sweep_id", "detail"}.
// Receivers may see an event twice (delivery is at least once): event_id tells them apart.
std::string webhook_body(const EventRow& event);

}  // namespace server
