#include "server/storage/audit.h"

#include <algorithm>

namespace server {

void AuditStore::append(const AuditRow& r) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Statement s(db.handle(),
              "INSERT INTO audit(at_ms, user, role, action, target, peer, allowed, detail) VALUES "
              "(?, ?, ?, ?, ?, ?, ?, ?)");
  s.bind(1, r.at_ms)
      .bind(2, r.user)
      .bind(3, r.role)
      .bind(4, r.action)
      .bind(5, r.target)
      .bind(6, r.peer)
      .bind(7, int64_t(r.allowed))
      .bind(8, r.detail);
  s.run();
}

std::vector<AuditRow> AuditStore::query(const AuditQuery& query) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Statement q(db.handle(),
              "SELECT id, at_ms, user, role, action, target, peer, allowed, detail FROM audit "
              "WHERE at_ms >= ?1 AND (?2 = '' OR user = ?2) ORDER BY id DESC LIMIT ?3");
  q.bind(1, query.since_ms).bind(2, query.user).bind(3, std::max(1, query.limit));
  std::vector<AuditRow> out;
  while (q.step())
    out.push_back({q.int64(0), q.int64(1), q.text(2), q.text(3), q.text(4), q.text(5), q.text(6),
                   q.int64(7) != 0, q.text(8)});
  std::reverse(out.begin(), out.end());
  return out;
}

int64_t AuditStore::prune(int64_t now_ms, int64_t retention_ms, const std::string& why) {
  {
    MutexLock lock(database_.mutex());
    Statement s(database_.db().handle(),
                "INSERT INTO audit_retention(id, retention_ms) VALUES (1, ?) "
                "ON CONFLICT(id) DO UPDATE SET retention_ms = excluded.retention_ms");
    s.bind(1, retention_ms).run();
  }
  int64_t removed = 0;
  for (;;) {
    MutexLock lock(database_.mutex());
    Database& db = database_.db();
    // The trigger's own cutoff expression: one statement sees one 'now', so the two agree.
    Statement batch(db.handle(),
                    "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at_ms < "
                    "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) - "
                    "(SELECT retention_ms FROM audit_retention WHERE id = 1) "
                    "ORDER BY at_ms LIMIT 5000)");
    batch.run();
    const int64_t n = db.changes();
    removed += n;
    if (n == 0) break;
  }
  if (removed > 0)
    append({0, now_ms, "coordinator", "system", "prune", "audit", "", true,
            std::to_string(removed) + " row(s) older than " +
                std::to_string(retention_ms / 86400000) + " day(s) removed (" + why + ")"});
  return removed;
}

void AuditStore::clear_retention() {
  MutexLock lock(database_.mutex());
  database_.db().exec("DELETE FROM audit_retention");
}

}  // namespace server
