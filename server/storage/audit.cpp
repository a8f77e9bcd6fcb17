// The Store's audit-trail methods (audit.h), apart from the jobs' SQL in store.cpp.
#include "server/storage/audit.h"

#include <algorithm>

#include "server/storage/store.h"

namespace server {

void Store::append_audit(const AuditRow& r) {
  std::lock_guard lock(mu_);
  Statement s(db_.handle(),
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

std::vector<AuditRow> Store::audit(const AuditQuery& query) {
  std::lock_guard lock(mu_);
  Statement q(db_.handle(),
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

}  // namespace server
