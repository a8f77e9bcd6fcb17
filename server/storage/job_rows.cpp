#include "server/storage/job_rows.h"

#include <sstream>

namespace server {

namespace {
constexpr const char* kJobColumns =
    "id, sweep_id, idx, label, ablation, seed, optimizer, batch_tokens, config_hash, "
    "config, backend, gpus, state, attempt, failures, max_attempts, COALESCE(worker_id, ''), "
    "COALESCE(lease_expiry_ms, 0), cancel_requested, step, max_steps, last_train_loss, "
    "last_val_loss, spikes, message, role, reason, stage, f.parent_job_id, f.branch_step, "
    "f.branch_tokens, f.changes, (SELECT idx FROM jobs p WHERE p.id = f.parent_job_id), "
    "(SELECT group_concat(branch_step) FROM job_forks k WHERE k.parent_job_id = jobs.id), "
    "(SELECT reuse FROM sweeps s WHERE s.id = jobs.sweep_id), r.source_job_id, "
    "(SELECT sweep_id FROM jobs src WHERE src.id = r.source_job_id)";

JobRow read_job(const Statement& q) {
  JobRow j;
  int c = 0;
  j.id = q.int64(c++);
  j.sweep_id = q.int64(c++);
  j.index = int(q.int64(c++));
  j.label = q.text(c++);
  j.ablation = q.text(c++);
  j.seed = q.int64(c++);
  j.optimizer = q.text(c++);
  j.batch_tokens = q.int64(c++);
  j.config_hash = q.text(c++);
  j.config = q.text(c++);
  j.backend = q.text(c++);
  j.gpus = int(q.int64(c++));
  j.state = parse_job_state(q.text(c++));
  j.attempt = int(q.int64(c++));
  j.failures = int(q.int64(c++));
  j.max_attempts = int(q.int64(c++));
  j.worker_id = q.text(c++);
  j.lease_expiry_ms = q.int64(c++);
  j.cancel_requested = q.int64(c++) != 0;
  j.step = q.int64(c++);
  j.max_steps = q.int64(c++);
  j.last_train_loss = q.real(c++);
  j.last_val_loss = q.real(c++);
  j.spikes = int(q.int64(c++));
  j.message = q.text(c++);
  const std::string role = q.text(c++);
  j.role = sweep_file::parse_job_role(role).value_or(sweep_file::JobRole::kGrid);
  j.reason = q.text(c++);
  j.stage = int(q.int64(c++));
  if (!q.is_null(c)) {
    JobFork f;
    f.parent_job_id = q.int64(c);
    f.plan.branch_step = q.int64(c + 1);
    f.plan.branch_tokens = q.int64(c + 2);
    f.plan.changes = nlohmann::json::parse(q.text(c + 3));
    f.plan.parent_index = int(q.int64(c + 4));
    j.fork = std::move(f);
  }
  c += 5;
  std::stringstream pinned(q.text(c++));
  for (std::string step; std::getline(pinned, step, ',');)
    j.pinned_steps.push_back(std::stoll(step));
  j.sweep_reuse = q.int64(c++) != 0;
  if (!q.is_null(c)) j.reused = RunRef{q.int64(c), q.int64(c + 1)};
  return j;
}
}  // namespace

std::vector<JobRow> query_jobs(Database& db, const char* where_sql, int64_t arg) {
  const std::string sql =
      std::string("SELECT ") + kJobColumns +
      " FROM jobs LEFT JOIN job_forks f ON f.job_id = jobs.id LEFT JOIN job_reuse r ON "
      "r.job_id = jobs.id WHERE " +
      where_sql;
  Statement q(db.handle(), sql.c_str());
  q.bind(1, arg);
  std::vector<JobRow> out;
  while (q.step()) out.push_back(read_job(q));
  return out;
}

Fence fence(Database& db, const JobRef& ref) {
  Statement q(db.handle(), "SELECT attempt, state FROM jobs WHERE id = ?");
  q.bind(1, ref.job_id);
  if (!q.step()) return Fence::kUnknownJob;
  if (q.int64(0) != ref.attempt || !is_active(parse_job_state(q.text(1)))) return Fence::kStale;
  return Fence::kOk;
}

}  // namespace server
