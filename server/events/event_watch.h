// Turns what the store holds into events, once each (storage/event_store.h): sweeps that
// finished and jobs that failed for good since the last look (one jobs-failed event per sweep per
// look, however many failed), and a silence of every worker while jobs wait. Judged from stored
// rows, so an event is neither lost nor repeated across coordinator restarts.
// Threads: called from the coordinator's housekeeping thread only.
#pragma once

#include <cstdint>

#include "server/storage/event_store.h"

namespace server {

class EventWatch {
 public:
  // no_worker_after_ms: announce when jobs wait and no worker was heard from for this long (0:
  // never).
  EventWatch(EventStore& events, int64_t no_worker_after_ms)
      : events_(events), no_worker_after_ms_(no_worker_after_ms) {}
  // Writes the events due at `now_ms`; returns how many.
  int look(int64_t now_ms);

 private:
  EventStore& events_;
  int64_t no_worker_after_ms_;
};

}  // namespace server
