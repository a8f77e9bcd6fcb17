// Refusals of callers without a valid token, kept so that strangers cannot grow the audit trail
// nor keep the doors busy (docs/deploy.md, "Strangers"). Per peer host and window (a minute):
//   - the first refusal is written to the audit trail at once, as any refusal was before;
//   - the others are counted, and one summary row per peer is written when the window ends
//     (flush: count, first and last time, a sample of what was tried);
//   - at most kMaxPeersPerWindow peers get rows of their own in a window; the rest share one
//     summary row for peer "*";
//   - a peer refused more than `max_failures` times in a window is rate-limited until the window
//     ends (429 with Retry-After at the HTTP door, RESOURCE_EXHAUSTED at the gRPC door), which
//     its summary row states.
// So a peer adds at most two rows a minute, and all strangers together at most
// 2 · kMaxPeersPerWindow + 1. Callers with a valid token are not counted here: their refusals are
// written one by one (gate.h). A kill -9 loses the counts of the current window (its first rows
// are written).
// Threads: every door's handler threads at once (one mutex). Lifetime: the Gate owns it.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "server/storage/audit.h"
#include "trainer_core/util/thread_annotations.h"

namespace server {

class StrangerLedger {
 public:
  static constexpr int64_t kWindowMs = 60'000;
  static constexpr size_t kMaxPeersPerWindow = 1000;
  explicit StrangerLedger(int max_failures) : max_failures_(max_failures) {}

  struct Verdict {
    bool write_now = false;  // the peer's first refusal of the window: audit it as it is
    int retry_after_s = 0;   // > 0: rate-limited, refuse with a retry hint
  };
  // One refusal of `peer` (any form: "ipv4:1.2.3.4:5678", "1.2.3.4:5678"); `sample` says what
  // was tried ("list_sweeps: no bearer token").
  Verdict refuse(const std::string& peer, const std::string& sample, int64_t now_ms) EXCLUDES(mu_);
  // The summary rows of the windows that ended by `now_ms` (every window: `all`, at shutdown),
  // each once.
  std::vector<AuditRow> take_summaries(int64_t now_ms, bool all) EXCLUDES(mu_);

  // "1.2.3.4" of "ipv4:1.2.3.4:5678", "::1" of "ipv6:[::1]:5678", "1.2.3.4" of "1.2.3.4:80".
  static std::string host_of(const std::string& peer);

 private:
  struct Tally {
    int64_t window_start = 0, first_ms = 0, last_ms = 0;
    int64_t count = 0;     // refusals in the window, the first one included
    bool limited = false;  // went over max_failures_
    std::string sample;    // the first refusal's
  };
  // The summary row of a window that ended, when it has more to say than its first row: into
  // `out`.
  void summarise(const std::string& host, const Tally& t, std::vector<AuditRow>& out) const;
  const int max_failures_;
  trainer_core::Mutex mu_;
  std::map<std::string, Tally> tallies_ GUARDED_BY(mu_);  // by host; "*" for the overflow
  std::vector<AuditRow> closed_ GUARDED_BY(mu_);          // summaries not yet taken
};

}  // namespace server
