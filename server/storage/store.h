// The coordinator's state in SQLite: one database (database.h) and the narrow stores over it.
// main() builds one Store and hands each room only the stores it uses:
//   sweeps       sweeps and their jobs (sweep_store.h)
//   workers      workers, leases, completions (worker_store.h)
//   metrics      curves, evaluations, summaries (metric_store.h)
//   audit        the audit trail (audit.h)
//   allocations  the provisioner's allocations (allocations.h)
//   events       events and their webhook deliveries (event_store.h)
//   logs         run logs as workers ship them (log_store.h)
// Store failures throw DbError (full() for a full disk or --max-db-mib). Times are milliseconds
// since the Unix epoch (*_ms); a loss not yet reported is NaN.
// Lifetime: the stores hold the database by reference; a Store is neither copied nor moved.
#pragma once

#include <string>

#include "server/storage/allocations.h"
#include "server/storage/audit.h"
#include "server/storage/database.h"
#include "server/storage/event_store.h"
#include "server/storage/log_store.h"
#include "server/storage/metric_store.h"
#include "server/storage/sweep_store.h"
#include "server/storage/worker_store.h"

namespace server {

struct Store {
  explicit Store(const std::string& path)
      : database(path),
        sweeps(database),
        workers(database),
        metrics(database),
        audit(database),
        allocations(database),
        events(database),
        logs(database) {}
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  CoordinatorDatabase database;  // first: the stores below are built on it
  SweepStore sweeps;
  WorkerStore workers;
  MetricStore metrics;
  AuditStore audit;
  AllocationStore allocations;
  EventStore events;
  LogStore logs;
};

}  // namespace server
