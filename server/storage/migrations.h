// Schema migrations: numbered SQL files (migrations/NNN_name.sql) built into the binary, applied
// in order, each inside a transaction, and recorded in schema_migrations.
#pragma once

#include <string>
#include <vector>

#include "server/storage/sqlite_db.h"

namespace server {

struct Migration {
  int version;
  std::string name;
  std::string sql;
};

const std::vector<Migration>& embedded_migrations();

// Applies what is missing; returns the resulting version. Throws DbError when the database was
// written by a newer coordinator (its version is above every known migration).
int migrate(Database& db, const std::vector<Migration>& migrations = embedded_migrations());

}  // namespace server
