#include "server/storage/allocations.h"

#include <stdexcept>

#include "server/storage/job_state.h"

namespace server {

const char* allocation_state_name(AllocationState state) {
  static const char* const kNames[] = {"requested", "queued", "running", "ended", "failed"};
  return kNames[int(state)];  // in the enum's order
}

AllocationState parse_allocation_state(std::string_view stored) {
  for (AllocationState s : kAllAllocationStates)
    if (stored == allocation_state_name(s)) return s;
  throw std::invalid_argument("not an allocation state: " + std::string(stored));
}

namespace {
// The open states in SQL, spelled through allocation_state_name.
std::string open_states_sql() {
  std::string out = "(";
  for (AllocationState s : kAllAllocationStates)
    if (is_open(s))
      out += std::string(out.size() > 1 ? ", '" : "'") + allocation_state_name(s) + "'";
  return out + ")";
}

std::vector<AllocationRow> query_allocations(Database& db, const char* where_sql, int limit) {
  Statement q(db.handle(),
              (std::string("SELECT a.id, a.engine, a.name, a.engine_id, a.state, a.backend, "
                           "a.nodes, a.slots_per_node, a.gpus_per_node, a.reason, a.engine_reason, "
                           "a.cancel_requested, a.requested_ms, a.updated_ms, "
                           "COALESCE(a.ended_ms, 0), a.engine_output, "
                           "(SELECT COUNT(*) FROM workers w WHERE w.allocation = a.name), "
                           "(SELECT COUNT(*) FROM workers w WHERE w.allocation = a.name AND "
                           "w.state = 'active') FROM allocations a WHERE ") +
               where_sql + " ORDER BY a.id DESC LIMIT ?")
                  .c_str());
  q.bind(1, limit);
  std::vector<AllocationRow> out;
  while (q.step()) {
    AllocationRow a;
    a.id = q.int64(0);
    a.engine = q.text(1);
    a.name = q.text(2);
    a.engine_id = q.text(3);
    a.state = parse_allocation_state(q.text(4));
    a.backend = q.text(5);
    a.nodes = int(q.int64(6));
    a.slots_per_node = int(q.int64(7));
    a.gpus_per_node = int(q.int64(8));
    a.reason = q.text(9);
    a.engine_reason = q.text(10);
    a.cancel_requested = q.int64(11) != 0;
    a.requested_ms = q.int64(12);
    a.updated_ms = q.int64(13);
    a.ended_ms = q.int64(14);
    a.engine_output = q.text(15);
    a.workers_registered = int(q.int64(16));
    a.workers_active = int(q.int64(17));
    out.push_back(std::move(a));
  }
  return out;
}

std::string name_prefix(Database& db) {
  Statement q(db.handle(), "SELECT tag FROM coordinator_identity");
  if (!q.step()) throw std::runtime_error("the database has no coordinator_identity row");
  return "sweep-" + q.text(0) + "-";
}
}  // namespace

std::string AllocationStore::allocation_name_prefix() {
  MutexLock lock(database_.mutex());
  return name_prefix(database_.db());
}

AllocationRow AllocationStore::begin_allocation(const AllocationRow& request, int64_t now_ms) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  const std::string prefix = name_prefix(db);
  Transaction tx(db);
  Statement insert(db.handle(),
                   "INSERT INTO allocations(engine, name, state, backend, nodes, slots_per_node, "
                   "gpus_per_node, reason, requested_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, "
                   "?, ?, ?)");
  // The name needs the id: a placeholder unique within this transaction, then the real name.
  insert.bind(1, request.engine)
      .bind(2, prefix + "new")
      .bind(3, std::string(allocation_state_name(AllocationState::kRequested)))
      .bind(4, request.backend)
      .bind(5, request.nodes)
      .bind(6, request.slots_per_node)
      .bind(7, request.gpus_per_node)
      .bind(8, request.reason)
      .bind(9, now_ms)
      .bind(10, now_ms);
  insert.run();
  const int64_t id = sqlite3_last_insert_rowid(db.handle());
  Statement name(db.handle(), "UPDATE allocations SET name = ? WHERE id = ?");
  name.bind(1, prefix + std::to_string(id)).bind(2, id);
  name.run();
  tx.commit();
  return query_allocations(db, ("id = " + std::to_string(id)).c_str(), 1).at(0);
}

void AllocationStore::record_allocation(int64_t id, AllocationState state,
                                        const std::string& engine_id,
                                        const std::string& engine_reason, int64_t now_ms) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Statement u(db.handle(),
              "UPDATE allocations SET state = ?, engine_id = ?, engine_reason = ?, updated_ms = ?, "
              "ended_ms = CASE WHEN ? THEN COALESCE(ended_ms, ?) ELSE NULL END WHERE id = ?");
  u.bind(1, std::string(allocation_state_name(state)))
      .bind(2, engine_id)
      .bind(3, engine_reason)
      .bind(4, now_ms)
      .bind(5, int64_t(!is_open(state)))
      .bind(6, now_ms)
      .bind(7, id);
  u.run();
}

void AllocationStore::record_engine_output(int64_t id, const std::string& output) {
  MutexLock lock(database_.mutex());
  Statement u(database_.db().handle(), "UPDATE allocations SET engine_output = ? WHERE id = ?");
  u.bind(1, output).bind(2, id);
  u.run();
}

void AllocationStore::withdraw_allocation(int64_t id, const std::string& why, int64_t now_ms) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Statement u(db.handle(),
              "UPDATE allocations SET cancel_requested = 1, engine_reason = ?, updated_ms = ? "
              "WHERE id = ?");
  u.bind(1, why).bind(2, now_ms).bind(3, id);
  u.run();
}

std::vector<AllocationRow> AllocationStore::allocations(bool open_only, int limit) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  return query_allocations(db, open_only ? ("a.state IN " + open_states_sql()).c_str() : "1",
                           limit);
}

ProvisionSnapshot AllocationStore::provision_snapshot(const std::string& backend) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Transaction tx(db, Transaction::kRead);
  ProvisionSnapshot out;
  {
    Statement a(db.handle(), with_job_states("SELECT sweep_id, COUNT(*) FROM jobs WHERE state IN "
                                             "({ASSIGNED}, {RUNNING}) GROUP BY sweep_id")
                                 .c_str());
    while (a.step()) out.active[a.int64(0)] = int(a.int64(1));
  }
  {
    Statement p(db.handle(),
                with_job_states("SELECT j.id, j.sweep_id, j.idx, s.priority, s.max_concurrency, "
                                "j.backend, j.gpus, s.owner FROM jobs j JOIN sweeps s ON s.id = "
                                "j.sweep_id "
                                "WHERE j.state = {PENDING} AND j.backend = ? ORDER BY j.id")
                    .c_str());
    p.bind(1, backend);
    while (p.step())
      out.pending.push_back({p.int64(0), p.int64(1), int(p.int64(2)), int(p.int64(3)),
                             int(p.int64(4)), p.text(5), int(p.int64(6)), p.text(7)});
  }
  {
    // Active workers: slots and GPUs less what their ASSIGNED and RUNNING jobs hold.
    Statement w(db.handle(),
                with_job_states("SELECT w.id, w.allocation, w.slots - COUNT(j.id), w.gpus - "
                                "COALESCE(SUM(j.gpus), 0) FROM workers w LEFT JOIN jobs j ON "
                                "j.worker_id = w.id AND j.state IN ({ASSIGNED}, {RUNNING}) WHERE "
                                "w.state = 'active' AND w.backend = ? GROUP BY w.id ORDER BY w.id")
                    .c_str());
    w.bind(1, backend);
    while (w.step())
      out.workers.push_back(
          {w.text(0), w.text(1), WorkerCapacity{backend, int(w.int64(2)), int(w.int64(3))}});
  }
  out.open_allocations = query_allocations(db, ("a.state IN " + open_states_sql()).c_str(), 100000);
  tx.commit();
  return out;
}

}  // namespace server
