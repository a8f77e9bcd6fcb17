// gRPC calls in progress per client address (coordinator --max-calls-per-address): what one
// address may hold of the coordinator at once. Each call of the synchronous gRPC server holds one
// of its threads while it runs, and a watch holds it until its sweep ends or its client goes, so
// without this bound one address could hold them all. A call over the bound is refused at once
// (RESOURCE_EXHAUSTED, admission.h), before its token is even read.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "trainer_core/util/thread_annotations.h"

namespace server {

class CallsInFlight {
 public:
  explicit CallsInFlight(int max_per_address) : max_(max_per_address) {}
  int max_per_address() const { return max_; }

  // One call's place, given back when it is destroyed (when the handler returns).
  class Slot {
   public:
    Slot(CallsInFlight& owner, std::string host) : owner_(&owner), host_(std::move(host)) {}
    Slot(Slot&& other) noexcept : owner_(other.owner_), host_(std::move(other.host_)) {
      other.owner_ = nullptr;
    }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    Slot& operator=(Slot&&) = delete;
    ~Slot() {
      if (owner_) owner_->leave(host_);
    }

   private:
    CallsInFlight* owner_;
    std::string host_;
  };

  // A place for one more call from `peer` (any form gRPC gives: "ipv4:1.2.3.4:5678"); none when
  // its address has max_per_address calls in progress.
  std::optional<Slot> enter(const std::string& peer) EXCLUDES(mu_);

 private:
  void leave(const std::string& host) EXCLUDES(mu_);
  const int max_;
  trainer_core::Mutex mu_;
  std::map<std::string, int> in_flight_ GUARDED_BY(mu_);  // by host; absent: none
};

}  // namespace server
