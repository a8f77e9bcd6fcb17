#include "server/storage/migrations.h"

#include "server/storage/clock.h"

namespace server {

int migrate(Database& db, const std::vector<Migration>& migrations) {
  db.exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT "
      "NULL, applied_ms INTEGER NOT NULL)");
  int current = 0;
  {
    Statement q(db.handle(), "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    if (q.step()) current = int(q.int64(0));
  }
  const int latest = migrations.empty() ? 0 : migrations.back().version;
  if (current > latest)
    throw DbError("database schema version " + std::to_string(current) +
                  " is newer than this coordinator knows (" + std::to_string(latest) +
                  "); run a newer coordinator");
  for (const Migration& m : migrations) {
    if (m.version <= current) continue;
    Transaction tx(db);
    db.exec(m.sql);
    Statement ins(db.handle(),
                  "INSERT INTO schema_migrations(version, name, applied_ms) VALUES (?, ?, ?)");
    ins.bind(1, m.version).bind(2, m.name).bind(3, now_ms());
    ins.run();
    tx.commit();
    current = m.version;
  }
  return current;
}

}  // namespace server
