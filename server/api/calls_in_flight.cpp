#include "server/api/calls_in_flight.h"

#include "server/api/stranger_ledger.h"

namespace server {

std::optional<CallsInFlight::Slot> CallsInFlight::enter(const std::string& peer) {
  std::string host = StrangerLedger::host_of(peer);
  trainer_core::MutexLock lock(mu_);
  int& n = in_flight_[host];
  if (n >= max_) return std::nullopt;
  ++n;
  return std::optional<Slot>(std::in_place, *this, std::move(host));
}

void CallsInFlight::leave(const std::string& host) {
  trainer_core::MutexLock lock(mu_);
  if (const auto it = in_flight_.find(host); it != in_flight_.end() && --it->second <= 0)
    in_flight_.erase(it);
}

}  // namespace server
