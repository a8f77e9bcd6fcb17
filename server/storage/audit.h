// The audit trail's rows (migrations/008_users_audit.sql): append-only, written by the API
// (server/api/) for every change a caller makes and every refusal, read back by admins (sweepctl
// audit).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "server/storage/database.h"

namespace server {

struct AuditRow {
  int64_t id = 0;
  int64_t at_ms = 0;
  std::string user, role;  // empty for a caller with no valid token
  std::string action;      // "submit", "cancel", "lease", "complete", ...
  std::string target;      // "sweep 3", "job 17", "worker w1"; empty for none
  std::string peer;        // the caller's address
  bool allowed = true;
  std::string detail;  // what happened, or the rule that refused it
};

struct AuditQuery {
  std::string user;      // empty: everyone
  int64_t since_ms = 0;  // rows at or after this time
  int limit = 1000;      // the newest `limit` rows, returned oldest first
};

// The trail's table. Every method is one transaction under the database's mutex (database.h).
// Lifetime: holds the CoordinatorDatabase by reference; main() keeps both alive (store.h).
class AuditStore {
 public:
  explicit AuditStore(CoordinatorDatabase& database) : database_(database) {}
  void append(const AuditRow& row);
  std::vector<AuditRow> query(const AuditQuery& query);
  // --audit-retention: records `retention_ms` (at least a day) as the table's retention, deletes
  // the rows older than it by the database's clock in batches (so that writers wait at most one
  // batch), then appends a row saying how many went and why; returns that count (0: nothing old
  // enough, and no row written). The table's triggers (migrations/015) refuse any other deletion.
  int64_t prune(int64_t now_ms, int64_t retention_ms, const std::string& why);
  // Started without --audit-retention: no retention recorded, so the triggers refuse every
  // deletion again.
  void clear_retention();

 private:
  CoordinatorDatabase& database_;
};

}  // namespace server
