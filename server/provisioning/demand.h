// How many workers the queue needs, and which queued allocations it no longer needs. Pure: no
// database, no engine, no clock of its own (the caller passes now), so every rule is unit-tested
// (tests/unit/provisioning_demand_test.cpp).
//
// Rules:
//  - Waiting jobs: PENDING jobs of the provisioned backend that could run now: a sweep at its
//    max_concurrency contributes only the jobs it may still start. A job needing more GPUs than
//    one node has is never provisioned for (counted as unfit, and said).
//  - Placement: waiting jobs, largest GPU need first, go first-fit into what exists: the free
//    slots and GPUs of active workers, then the nodes of open allocations whose workers have not
//    all registered yet (running, then requested, then queued, oldest first); a withdrawn
//    allocation offers nothing. Jobs left over are packed first-fit into new nodes of the
//    allocation shape (nodes x slots x GPUs); the allocations those nodes make up are the need,
//    so no allocation is asked for that the waiting jobs could not use.
//  - Scale up: the need must persist for `delay` without a break before allocations are asked
//    for, never past max_allocations open at once; after asking, the delay starts again.
//  - Withdraw: an allocation still queued in the engine that no waiting job was placed on is
//    surplus. Surplus is withdrawn at once when no job waits at all (the sweep finished, was
//    cancelled or drained), otherwise only after it persisted for `delay`, so a queue that
//    oscillates faster than the delay neither asks nor withdraws (no flapping).
//  - Scale down of running allocations is the workers' own: idle past their timeout, they leave
//    and their allocation ends (worker --idle-exit-s).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/storage/allocations.h"

namespace server {

struct AllocationShape {
  std::string backend = "cuda";  // cpu | cuda: the workers an allocation starts
  int nodes = 1;                 // per allocation: one worker per node
  int slots_per_node = 8;
  int gpus_per_node = 8;  // 0 for cpu
};

struct DemandLimits {
  AllocationShape shape;
  int max_allocations = 4;   // open at once
  int64_t delay_ms = 30000;  // a need or a surplus must last this long
};

struct DemandDecision {
  int waiting = 0;   // jobs that could run now
  int unplaced = 0;  // of those, jobs nothing existing or open has room for
  int unfit = 0;     // jobs needing more GPUs than one node has: never provisioned for
  int needed = 0;    // allocations that would place every unplaced job
  int request = 0;   // allocations to ask for now (needed, after the delay and the limit)
  std::vector<int64_t> withdraw;  // queued allocations to cancel
  std::string why;                // for the requested allocations' reason
};

class DemandPlanner {
 public:
  explicit DemandPlanner(DemandLimits limits) : limits_(std::move(limits)) {}
  DemandDecision plan(const ProvisionSnapshot& snapshot, int64_t now_ms);
  const DemandLimits& limits() const { return limits_; }

 private:
  DemandLimits limits_;
  std::optional<int64_t> need_since_ms_, surplus_since_ms_;
};

}  // namespace server
