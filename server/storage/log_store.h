// Run logs (migrations/018_job_logs.sql): the bytes each attempt of a job wrote to stdout and
// stderr, as its worker ships them (worker/daemon.cpp), kept so that a lost worker's log up to
// its last shipment stays readable (sweepctl logs, the run page). Bounded per attempt: the first
// kHeadBytes and the last kTailBytes; the middle of a longer log is counted, not kept. Bytes are
// stored as written (invalid UTF-8 and lines without newlines included); readers escape them.
// Every method is one transaction under the database's mutex (database.h).
// Lifetime: holds the CoordinatorDatabase by reference; main() keeps both alive (store.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/storage/database.h"
#include "server/storage/job_rows.h"

namespace server {

// A stretch of a log read from `from`: the bytes kept before the unkept middle, how many bytes
// of the middle are not kept, and the bytes after it. next_offset is where the next read starts.
struct LogRead {
  int attempt = 0;
  std::string before_gap;
  int64_t omitted_bytes = 0;
  std::string after_gap;
  int64_t total_bytes = 0;  // shipped so far
};

class LogStore {
 public:
  static constexpr int64_t kHeadBytes = 64 * 1024;
  static constexpr int64_t kTailBytes = 192 * 1024;
  static constexpr int64_t kMaxChunkBytes = 256 * 1024;  // one shipment at most

  explicit LogStore(CoordinatorDatabase& database) : database_(database) {}

  // Appends the bytes a worker read from offset `offset` of the attempt's log. Bytes already
  // stored (a chunk shipped again) are skipped. Fenced like every worker call that changes a job
  // (job_rows.h). Returns the fence and, when it is kOk, the log's length now in *stored_through;
  // an offset beyond it is not stored (the worker ships again from *stored_through).
  Fence append(const JobRef& ref, int64_t offset, const std::string& bytes,
               int64_t* stored_through);
  // The attempt's log from byte `from` (attempt 0: the job's newest attempt with a log); nullopt
  // when the job has no log for it.
  std::optional<LogRead> read(int64_t job_id, int attempt, int64_t from);
  // The attempts of the job that have logs, oldest first.
  std::vector<int> attempts(int64_t job_id);

 private:
  CoordinatorDatabase& database_;
};

}  // namespace server
