#include "server/storage/log_store.h"

#include <algorithm>

namespace server {

Fence LogStore::append(const JobRef& ref, int64_t offset, const std::string& bytes,
                       int64_t* stored_through) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Transaction tx(db);
  const Fence f = fence(db, ref);
  if (f != Fence::kOk) return f;
  std::string head, tail;
  int64_t total = 0;
  {
    Statement q(db.handle(),
                "SELECT head, tail, total_bytes FROM job_logs WHERE job_id = ? AND attempt = ?");
    q.bind(1, ref.job_id).bind(2, int64_t(ref.attempt));
    if (q.step()) {
      head = q.blob(0);
      tail = q.blob(1);
      total = q.int64(2);
    }
  }
  *stored_through = total;
  if (offset > total || offset + int64_t(bytes.size()) <= total)
    return Fence::kOk;  // a gap, or
                        // nothing new
  std::string_view fresh(bytes);
  fresh.remove_prefix(size_t(total - offset));  // what was stored before
  const size_t to_head =
      size_t(std::min<int64_t>(kHeadBytes - int64_t(head.size()), int64_t(fresh.size())));
  head.append(fresh.substr(0, to_head));
  fresh.remove_prefix(to_head);
  tail.append(fresh);
  if (int64_t(tail.size()) > kTailBytes) tail.erase(0, tail.size() - size_t(kTailBytes));
  total += int64_t(to_head + fresh.size());
  Statement u(
      db.handle(),
      "INSERT INTO job_logs(job_id, attempt, head, tail, total_bytes) VALUES (?, ?, ?, ?, ?) "
      "ON CONFLICT(job_id, attempt) DO UPDATE SET head = excluded.head, tail = "
      "excluded.tail, total_bytes = excluded.total_bytes");
  u.bind(1, ref.job_id)
      .bind(2, int64_t(ref.attempt))
      .bind_blob(3, head)
      .bind_blob(4, tail)
      .bind(5, total);
  u.run();
  tx.commit();
  *stored_through = total;
  return Fence::kOk;
}

std::optional<LogRead> LogStore::read(int64_t job_id, int attempt, int64_t from) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Statement q(db.handle(),
              "SELECT attempt, head, tail, total_bytes FROM job_logs WHERE job_id = ?1 AND "
              "(?2 = 0 OR attempt = ?2) ORDER BY attempt DESC LIMIT 1");
  q.bind(1, job_id).bind(2, int64_t(attempt));
  if (!q.step()) return std::nullopt;
  LogRead out;
  out.attempt = int(q.int64(0));
  const std::string head = q.blob(1), tail = q.blob(2);
  out.total_bytes = q.int64(3);
  const int64_t tail_start = out.total_bytes - int64_t(tail.size());
  from = std::clamp<int64_t>(from, 0, out.total_bytes);
  if (from < int64_t(head.size())) out.before_gap = head.substr(size_t(from));
  const int64_t gap_from = std::max<int64_t>(from, int64_t(head.size()));
  out.omitted_bytes = std::max<int64_t>(0, tail_start - gap_from);
  const int64_t tail_from = std::max(from, tail_start);
  // With the head not yet full the tail is empty; a head that is full has tail_start >= its size.
  if (tail_from < out.total_bytes) out.after_gap = tail.substr(size_t(tail_from - tail_start));
  return out;
}

std::vector<int> LogStore::attempts(int64_t job_id) {
  MutexLock lock(database_.mutex());
  Statement q(database_.db().handle(),
              "SELECT attempt FROM job_logs WHERE job_id = ? ORDER BY attempt");
  q.bind(1, job_id);
  std::vector<int> out;
  while (q.step()) out.push_back(int(q.int64(0)));
  return out;
}

}  // namespace server
