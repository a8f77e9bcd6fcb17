// A thin RAII layer over the SQLite C API: one connection, prepared statements only.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

namespace server {

struct DbError : std::runtime_error {
  explicit DbError(const std::string& what, int sqlite_code = 0)
      : std::runtime_error(what), code(sqlite_code) {}
  int code;  // SQLite's result code (0: not from SQLite)
  // The database cannot grow: the disk is full, or the page limit (--max-db-mib) is reached.
  bool full() const { return (code & 0xff) == 13 /* SQLITE_FULL */; }
};

class Statement {
 public:
  Statement(sqlite3* db, const char* sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int index, int64_t v);
  Statement& bind(int index, int v) { return bind(index, int64_t(v)); }
  Statement& bind(int index, double v);  // NaN/inf are stored as NULL
  Statement& bind(int index, const std::string& v);
  Statement& bind_null(int index);
  Statement& bind_blob(int index, const std::string& bytes);
  bool step();  // true while a row is available
  void run();   // step to completion, then reset for reuse
  void reset();

  int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }
  double real(int col) const;  // NULL reads as NaN
  std::string text(int col) const;
  std::string blob(int col) const;
  bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

class Database {
 public:
  explicit Database(const std::string& path);
  ~Database();
  sqlite3* handle() { return db_; }
  void exec(const std::string& sql);  // no parameters: DDL, BEGIN/COMMIT
  // Caps the file at about `bytes` (PRAGMA max_page_count): writes past it fail as full().
  void limit_size(int64_t bytes);
  int64_t changes() { return sqlite3_changes64(db_); }

 private:
  sqlite3* db_ = nullptr;
};

// PRAGMA quick_check: throws a DbError naming the file and SQLite's first complaint when the
// database is damaged (the coordinator refuses to start on it rather than serve wrong results).
void check_integrity(Database& db, const std::string& path);

// A consistent copy of the database at `from` into `to` with SQLite's online backup API, safe
// while a coordinator writes to it; written to a temporary file and renamed into place.
void backup_database(const std::string& from, const std::string& to);

// BEGIN IMMEDIATE ... COMMIT (kRead: a deferred BEGIN, for a consistent view of several reads),
// rolled back when an exception leaves the scope.
class Transaction {
 public:
  enum Mode { kWrite, kRead };
  explicit Transaction(Database& db, Mode mode = kWrite);
  ~Transaction();
  void commit();

 private:
  Database& db_;
  bool done_ = false;
};

}  // namespace server
