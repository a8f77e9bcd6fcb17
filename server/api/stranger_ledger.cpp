#include "server/api/stranger_ledger.h"

#include <algorithm>

namespace server {

std::string StrangerLedger::host_of(const std::string& peer) {
  std::string p = peer;
  for (const char* scheme : {"ipv4:", "ipv6:", "unix:"})
    if (p.rfind(scheme, 0) == 0) p = p.substr(std::string(scheme).size());
  if (!p.empty() && p.front() == '[') {  // [v6]:port
    const size_t close = p.find(']');
    return close == std::string::npos ? p : p.substr(1, close - 1);
  }
  // host:port, unless the colons are an IPv6 address without brackets (HTTP's remote_addr).
  const size_t colon = p.rfind(':');
  if (colon != std::string::npos && p.find(':') == colon) return p.substr(0, colon);
  return p;
}

StrangerLedger::Verdict StrangerLedger::refuse(const std::string& peer, const std::string& sample,
                                               int64_t now_ms) {
  const int64_t window = now_ms - now_ms % kWindowMs;
  trainer_core::MutexLock lock(mu_);
  std::string host = host_of(peer);
  if (!tallies_.count(host) && tallies_.size() >= kMaxPeersPerWindow) host = "*";
  Tally& t = tallies_[host];
  Verdict v;
  if (t.count == 0 || t.window_start != window) {
    // A tally of an earlier window not yet taken by take_summaries: it is summarised there as
    // it was; this window starts afresh (its first row written now).
    if (t.count > 0) summarise(host, t, closed_);
    t = Tally{window, now_ms, now_ms, 0, false, sample};
    v.write_now = host != "*";
  }
  ++t.count;
  t.last_ms = now_ms;
  if (t.count > max_failures_) {
    t.limited = true;
    v.retry_after_s = int((window + kWindowMs - now_ms + 999) / 1000);
  }
  return v;
}

void StrangerLedger::summarise(const std::string& host, const Tally& t,
                               std::vector<AuditRow>& out) const {
  if (t.count <= 1 && host != "*") return;  // its first row said it all
  AuditRow row;
  row.at_ms = t.last_ms;
  row.action = "unauthenticated";
  row.peer = host;
  row.allowed = false;
  row.detail =
      std::to_string(host == "*" ? t.count : t.count - 1) +
      (host == "*" ? " refusals without a valid token from peers beyond the first " +
                         std::to_string(kMaxPeersPerWindow) + " of the minute"
                   : " more refusals without a valid token after the first (its own row)") +
      ", from " + std::to_string(t.first_ms) + " to " + std::to_string(t.last_ms) +
      " ms; first: " + t.sample +
      (t.limited ? "; rate-limited after " + std::to_string(max_failures_) +
                       " a minute (429 / RESOURCE_EXHAUSTED)"
                 : "");
  out.push_back(std::move(row));
}

std::vector<AuditRow> StrangerLedger::take_summaries(int64_t now_ms, bool all) {
  const int64_t window = now_ms - now_ms % kWindowMs;
  trainer_core::MutexLock lock(mu_);
  std::vector<AuditRow> out = std::move(closed_);
  closed_.clear();
  for (auto it = tallies_.begin(); it != tallies_.end();) {
    const Tally& t = it->second;
    if (!all && t.window_start == window) {
      ++it;
      continue;
    }
    summarise(it->first, t, out);
    it = tallies_.erase(it);
  }
  return out;
}

}  // namespace server
