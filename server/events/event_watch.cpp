#include "server/events/event_watch.h"

#include <algorithm>

#include "server/events/event_text.h"

namespace server {

int EventWatch::look(int64_t now_ms) {
  int written = 0;
  const EventNews news = events_.unannounced();
  if (!news.empty()) {
    const std::vector<EventRow> events = news_events(news, now_ms);
    events_.announce(news, events);
    written += int(events.size());
  }
  if (no_worker_after_ms_ <= 0) return written;
  // An outage starts when the last worker was heard from, or when the oldest waiting job began
  // to wait if that is later (jobs that wait behind busy workers are no outage). One event per
  // outage: it is the same outage while no worker was heard from after the one announced began.
  const EventStore::WorkerSilence silence = events_.worker_silence();
  if (!silence.oldest_pending_ms) return written;
  const int64_t since = std::max(silence.last_heard_ms, *silence.oldest_pending_ms);
  const bool new_outage =
      silence.announced_since_ms == 0 || silence.last_heard_ms > silence.announced_since_ms;
  if (new_outage && now_ms - since >= no_worker_after_ms_) {
    events_.announce_silence(no_worker_event(since, now_ms), since);
    ++written;
  }
  return written;
}

}  // namespace server
