// A cluster engine the coordinator asks for workers: Slurm (slurm_engine.h) or Kubernetes
// (kubernetes_engine.h). The engine places and runs; the coordinator only asks, looks and
// withdraws, through the engine's own commands. Every allocation carries the name the
// coordinator gave it (AllocationRow::name), which is how a restarted coordinator finds it.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "server/provisioning/demand.h"
#include "server/storage/allocations.h"

namespace server {

// What the engine says of one allocation. state: queued, running, ended or failed (never
// requested); reason: the engine's word for it (a queue reason, a failure's cause).
struct EngineView {
  std::string name, engine_id;
  AllocationState state = AllocationState::kQueued;
  std::string reason;
};

// An allocation of `shape` for the engine `kind` ("slurm" | "kubernetes"), named `name`: what the
// provisioner asks for (the name comes from its row) and what the preflight checks try.
AllocationRow shaped_allocation(const AllocationShape& shape, const std::string& kind,
                                const std::string& name = "");

// The most of an engine's own words kept with a failed allocation (AllocationRow::engine_output).
constexpr size_t kEngineOutputLimit = 4096;

// The end of `text` within kEngineOutputLimit bytes and `max_lines` lines, cut at a line start,
// trailing blank lines dropped: what a user needs of a failure is its last lines.
std::string last_lines(const std::string& text, int max_lines);

// A command the engine refused or that did not answer: its message names the command and what
// it printed.
struct EngineError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class ClusterEngine {
 public:
  virtual ~ClusterEngine() = default;
  virtual const char* kind() const = 0;  // "slurm" | "kubernetes", as stored in allocations.engine
  // Asks for the allocation (its name, backend and shape); returns the engine's id for it.
  virtual std::string submit(const AllocationRow& allocation) = 0;
  // Every allocation the engine still knows whose name starts with `prefix`, live or recently
  // ended.
  virtual std::vector<EngineView> list(const std::string& prefix) = 0;
  // One allocation by id that list() no longer shows (Slurm's accounting); nullopt: unknown.
  virtual std::optional<EngineView> find(const std::string& engine_id) = 0;
  // Withdraws it: a queued one never starts, a running one's workers get SIGTERM and hand their
  // jobs back. Idempotent.
  virtual void cancel(const std::string& engine_id) = 0;
  // The engine's own words about an allocation that failed (the state its reason cannot say:
  // Slurm's output file, a pod's waiting reason, events and log), at most kEngineOutputLimit
  // bytes; "" when it has none. Never throws: what could not be read is said in the text.
  virtual std::string failure_output(const AllocationRow& allocation,
                                     const std::string& engine_id) = 0;
};

}  // namespace server
