// The coordinator's one SQLite connection (WAL), shared by its narrow stores: sweep_store.h
// (sweeps and jobs), worker_store.h (workers and leases), metric_store.h (curves, evaluations,
// summaries), audit.h (the audit trail), allocations.h (the provisioner's allocations) and
// event_store.h (events and webhook deliveries).
// Opening it refuses a damaged file, applies the migrations and prepares the series store.
//
// Threads: one mutex guards the connection; every store method holds it for its whole
// transaction (MutexLock lock(database_.mutex())), so one database is shared by every gRPC and
// HTTP thread, the planner and the provisioner. Clang checks this (thread_annotations.h).
// Lifetime: the coordinator's main() owns it (through Store, store.h) and outlives every store,
// service and server that holds a reference.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "server/storage/series_store.h"
#include "server/storage/sqlite_db.h"
#include "trainer_core/util/thread_annotations.h"

namespace server {

using trainer_core::Mutex;
using trainer_core::MutexLock;

class CoordinatorDatabase {
 public:
  explicit CoordinatorDatabase(const std::string& path);

  Mutex& mutex() LOCK_RETURNED(mu_) { return mu_; }
  Database& db() REQUIRES(mu_) { return db_; }
  SeriesStore& series() REQUIRES(mu_) { return *series_; }

  // Caps the database file at about `bytes`; writes past it fail with DbError::full().
  void limit_size(int64_t bytes) EXCLUDES(mu_) {
    MutexLock lock(mu_);
    db_.limit_size(bytes);
  }

 private:
  Mutex mu_;
  Database db_ GUARDED_BY(mu_);
  std::unique_ptr<SeriesStore> series_ PT_GUARDED_BY(mu_);  // prepared after the migrations
};

}  // namespace server
