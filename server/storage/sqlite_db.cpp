#include "server/storage/sqlite_db.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace server {

namespace {
[[noreturn]] void fail(sqlite3* db, const std::string& what) {
  throw DbError(what + ": " + sqlite3_errmsg(db), sqlite3_extended_errcode(db));
}
}  // namespace

Statement::Statement(sqlite3* db, const char* sql) : db_(db) {
  if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK)
    fail(db, std::string("prepare ") + sql);
}
Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement& Statement::bind(int i, int64_t v) {
  sqlite3_bind_int64(stmt_, i, v);
  return *this;
}
Statement& Statement::bind(int i, double v) {
  if (std::isfinite(v))
    sqlite3_bind_double(stmt_, i, v);
  else
    sqlite3_bind_null(stmt_, i);
  return *this;
}
Statement& Statement::bind(int i, const std::string& v) {
  sqlite3_bind_text(stmt_, i, v.data(), int(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::bind_blob(int i, const std::string& v) {
  sqlite3_bind_blob(stmt_, i, v.data(), int(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::bind_null(int i) {
  sqlite3_bind_null(stmt_, i);
  return *this;
}
bool Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  fail(db_, "step");
}
void Statement::run() {
  while (step()) {
  }
  reset();
}
void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}
double Statement::real(int col) const {
  return is_null(col) ? std::numeric_limits<double>::quiet_NaN()
                      : sqlite3_column_double(stmt_, col);
}
std::string Statement::blob(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  return p ? std::string(static_cast<const char*>(p), size_t(sqlite3_column_bytes(stmt_, col)))
           : std::string();
}
std::string Statement::text(int col) const {
  const auto* p = sqlite3_column_text(stmt_, col);
  return p ? std::string(reinterpret_cast<const char*>(p), size_t(sqlite3_column_bytes(stmt_, col)))
           : "";
}

Database::Database(const std::string& path) {
  if (sqlite3_open_v2(path.c_str(), &db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw DbError("cannot open database " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db_, 5000);
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=NORMAL");  // WAL + NORMAL: durable across process crashes
  exec("PRAGMA foreign_keys=ON");
}
Database::~Database() { sqlite3_close(db_); }

void Database::exec(const std::string& sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    const std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw DbError("sql failed: " + msg, rc);
  }
}

void Database::limit_size(int64_t bytes) {
  Statement q(db_, "PRAGMA page_size");
  const int64_t page = q.step() ? q.int64(0) : 4096;
  exec("PRAGMA max_page_count = " + std::to_string(std::max<int64_t>(1, bytes / page)));
}

void check_integrity(Database& db, const std::string& path) {
  std::string first;
  try {
    Statement q(db.handle(), "PRAGMA quick_check");
    if (q.step()) first = q.text(0);
  } catch (const DbError& e) {
    first = e.what();
  }
  if (first != "ok")
    throw DbError("database " + path + " is corrupt (" + first +
                  "); restore it from a backup (`coordinator backup`, docs/deploy.md)");
}

void backup_database(const std::string& from, const std::string& to) {
  sqlite3* src = nullptr;
  sqlite3* dst = nullptr;
  const std::string tmp = to + ".tmp";
  auto close_all = [&] {
    sqlite3_close(src);
    sqlite3_close(dst);
  };
  if (sqlite3_open_v2(from.c_str(), &src, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    const std::string msg = src ? sqlite3_errmsg(src) : "out of memory";
    close_all();
    throw DbError("backup: cannot open " + from + ": " + msg);
  }
  std::remove(tmp.c_str());
  if (sqlite3_open(tmp.c_str(), &dst) != SQLITE_OK) {
    const std::string msg = dst ? sqlite3_errmsg(dst) : "out of memory";
    close_all();
    throw DbError("backup: cannot create " + tmp + ": " + msg);
  }
  sqlite3_busy_timeout(src, 5000);
  sqlite3_backup* b = sqlite3_backup_init(dst, "main", src, "main");
  if (!b) {
    const std::string msg = sqlite3_errmsg(dst);
    close_all();
    throw DbError("backup: " + msg);
  }
  int rc;
  // Copy in steps so a busy coordinator is not blocked for the whole copy; a write in between
  // restarts the copy, which therefore always ends consistent.
  while ((rc = sqlite3_backup_step(b, 1024)) == SQLITE_OK || rc == SQLITE_BUSY ||
         rc == SQLITE_LOCKED)
    if (rc != SQLITE_OK) sqlite3_sleep(50);
  sqlite3_backup_finish(b);
  if (rc != SQLITE_DONE) {
    const std::string msg = sqlite3_errstr(rc);
    close_all();
    std::remove(tmp.c_str());
    throw DbError("backup of " + from + " failed: " + msg);
  }
  close_all();
  if (std::rename(tmp.c_str(), to.c_str()) != 0)
    throw DbError("backup: cannot rename " + tmp + " to " + to);
}

Transaction::Transaction(Database& db, Mode mode) : db_(db) {
  db_.exec(mode == kRead ? "BEGIN" : "BEGIN IMMEDIATE");
}
Transaction::~Transaction() {
  if (!done_) {
    try {
      db_.exec("ROLLBACK");
    } catch (...) {
    }
  }
}
void Transaction::commit() {
  db_.exec("COMMIT");
  done_ = true;
}

}  // namespace server
