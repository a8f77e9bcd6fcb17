// Allocations: what the coordinator asked a cluster engine (Slurm, Kubernetes) for, to start
// workers when jobs wait (server/provisioning/provisioner.h decides and asks; this is the row).
//   requested -> queued -> running -> ended | failed
//   requested: the row is written, the engine not yet asked or its answer not yet stored (a crash
//              here is resolved at restart by finding the name in the engine's queue);
//   queued:    the engine has it and has not started it (its reason says why: Priority, Resources);
//   running:   the engine started it: its workers register, run jobs, and leave when idle;
//   ended:     it finished as asked: its workers left, or the coordinator withdrew it;
//   failed:    the engine failed or killed it (node failure, time limit, a user's scancel); the
//              engine's reason is kept. Jobs its workers held go back to the queue by their leases.
// Stored as text in allocations.state (migrations/007_provisioning.sql); the proto's
// AllocationState carries the same names (api/rows_proto.h).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "server/scheduling/scheduler.h"
#include "server/storage/database.h"

namespace server {

enum class AllocationState { kRequested, kQueued, kRunning, kEnded, kFailed };
constexpr AllocationState kAllAllocationStates[] = {
    AllocationState::kRequested, AllocationState::kQueued, AllocationState::kRunning,
    AllocationState::kEnded, AllocationState::kFailed};

const char* allocation_state_name(AllocationState state);  // "requested", "queued", ...
// Throws std::invalid_argument for text that is no state.
AllocationState parse_allocation_state(std::string_view stored);
inline bool is_open(AllocationState state) {
  return state == AllocationState::kRequested || state == AllocationState::kQueued ||
         state == AllocationState::kRunning;
}

struct AllocationRow {
  int64_t id = 0;
  std::string engine;  // slurm | kubernetes
  std::string name;    // sweep-<tag>-<id>: the engine's job name, unique to this database
  std::string
      engine_id;  // Slurm's job id, the Kubernetes Job's name; empty until the engine answered
  AllocationState state = AllocationState::kRequested;
  std::string backend;  // cpu | cuda: the workers it starts
  int nodes = 1, slots_per_node = 1, gpus_per_node = 0;
  std::string reason;         // why the coordinator asked for it
  std::string engine_reason;  // the engine's latest word
  // The engine's own words when it failed (migrations/012): the output's last lines, the pod's
  // reason, events and log tail; bounded by the engine (ClusterEngine::failure_output).
  std::string engine_output;
  bool cancel_requested = false;
  int64_t requested_ms = 0, updated_ms = 0, ended_ms = 0;  // ended_ms 0: still open
  // From the workers table: workers that registered with this allocation's name, and how many of
  // them are active now.
  int workers_registered = 0, workers_active = 0;
};

// What the provisioner plans from (server/provisioning/demand.h), read in one transaction: the
// queue of one backend, the jobs running per sweep (max_concurrency), the active workers of that
// backend with what they have free, and every open allocation.
struct LiveWorker {
  std::string id, allocation;
  WorkerCapacity free;
};
struct ProvisionSnapshot {
  std::vector<PendingJob> pending;
  std::map<int64_t, int> active;
  std::vector<LiveWorker> workers;
  std::vector<AllocationRow> open_allocations;
};

// The allocations' table, written by the provisioner alone. begin_allocation stores the row as
// requested, names it (allocation_name_prefix() + id) and returns it; record_allocation stores
// the engine's view (final states stamp ended_ms), record_engine_output its words on a failure;
// allocations() lists the newest first. Every method is one transaction under the database's mutex
// (database.h). Lifetime: holds the CoordinatorDatabase by reference; main() keeps both alive
// (store.h).
class AllocationStore {
 public:
  explicit AllocationStore(CoordinatorDatabase& database) : database_(database) {}

  std::string allocation_name_prefix();
  AllocationRow begin_allocation(const AllocationRow& request, int64_t now_ms);
  void record_allocation(int64_t id, AllocationState state, const std::string& engine_id,
                         const std::string& engine_reason, int64_t now_ms);
  // Stores what the engine said of a failed allocation (AllocationRow::engine_output).
  void record_engine_output(int64_t id, const std::string& output);
  void withdraw_allocation(int64_t id, const std::string& why, int64_t now_ms);
  std::vector<AllocationRow> allocations(bool open_only, int limit = 200);
  ProvisionSnapshot provision_snapshot(const std::string& backend);

 private:
  CoordinatorDatabase& database_;
};

}  // namespace server
