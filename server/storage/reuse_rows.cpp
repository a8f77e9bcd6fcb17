#include "server/storage/reuse_rows.h"

#include <nlohmann/json.hpp>
#include <optional>

#include "server/storage/fork_rows.h"
#include "server/storage/job_state.h"
#include "sweep_file/sweep_spec.h"
#include "trainer_core/train/run_records.h"

namespace server {

using nlohmann::json;

namespace {

// Candidates looked at per lease: the newest runs of the config hash.
constexpr int kMaxCandidatesLookedAt = 20;

// What a job's stored summary says it was trained on and by; nullopt without a summary that
// names both (runs from before trainer identities were kept are never reused).
std::optional<trainer_core::ReusableRunConfig> origin_of(Database& db, int64_t job_id) {
  Statement q(db.handle(), "SELECT summary FROM run_summaries WHERE job_id = ?");
  q.bind(1, job_id);
  if (!q.step()) return std::nullopt;
  trainer_core::RunSummary s;
  try {
    s = trainer_core::summary_from_json(json::parse(q.text(0)));
  } catch (const std::exception&) {
    return std::nullopt;  // a summary this version cannot read is no basis for a match
  }
  if (s.dataset_id.empty() || s.trainer_commit.empty() || s.trainer_binary_sha256.empty())
    return std::nullopt;
  return trainer_core::ReusableRunConfig{job_id, s.dataset_id, s.trainer_commit, s.trainer_dirty,
                                         s.trainer_binary_sha256};
}

bool same_origin(const trainer_core::ReusableRunConfig& a,
                 const trainer_core::ReusableRunConfig& b) {
  return a.dataset_id == b.dataset_id && a.trainer_commit == b.trainer_commit &&
         a.trainer_dirty == b.trainer_dirty && a.trainer_binary_sha256 == b.trainer_binary_sha256;
}

// A hash of the job's config and, for a fork, of each ancestor's with the step branched from it:
// equal for jobs that would train alike from the same start.
std::string lineage_key(Database& db, int64_t job_id) {
  Statement hash(db.handle(), "SELECT config_hash FROM jobs WHERE id = ?");
  json chain = json::array();
  int64_t id = job_id, branched_at = -1;
  for (int depth = 0; depth < kMaxForkDepth; ++depth) {
    hash.bind(1, id);
    if (!hash.step()) break;
    chain.push_back({hash.text(0), branched_at});
    hash.reset();
    const std::optional<ForkLink> link = fork_link(db, id);
    if (!link) break;
    id = link->parent_job_id;
    branched_at = link->branch_step;
  }
  return sweep_file::json_hash(chain);
}

// Whether every ancestor of a fork came from the same data and trainer as the fork itself.
bool ancestors_share_origin(Database& db, const trainer_core::ReusableRunConfig& c) {
  int64_t id = c.job;
  for (int depth = 0; depth < kMaxForkDepth; ++depth) {
    const std::optional<ForkLink> link = fork_link(db, id);
    if (!link) return true;
    const auto parent = origin_of(db, link->parent_job_id);
    if (!parent || !same_origin(*parent, c)) return false;
    id = link->parent_job_id;
  }
  return false;
}

}  // namespace

std::vector<ReuseCandidate> reuse_candidates(Database& db, int64_t job_id) {
  Statement q(db.handle(),
              with_job_states(
                  "SELECT c.id, c.sweep_id FROM jobs c JOIN jobs j ON j.id = ?1 WHERE "
                  "c.config_hash = j.config_hash AND c.id != j.id AND c.state = {SUCCEEDED} AND "
                  "NOT EXISTS (SELECT 1 FROM job_reuse r WHERE r.job_id = c.id) "
                  "ORDER BY c.id DESC LIMIT ?2")
                  .c_str());
  q.bind(1, job_id).bind(2, kMaxCandidatesLookedAt);
  std::vector<RunRef> runs;
  while (q.step()) runs.push_back({q.int64(0), q.int64(1)});
  std::vector<ReuseCandidate> out;
  if (runs.empty()) return out;
  const std::string key = lineage_key(db, job_id);
  // A fork's own parent must have finished from the same data and trainer as the run offered:
  // else the fork would take a prefix its parent did not train.
  const std::optional<ForkLink> link = fork_link(db, job_id);
  const auto parent_origin = link ? origin_of(db, link->parent_job_id) : std::nullopt;
  if (link && !parent_origin) return out;
  for (const RunRef& run : runs) {
    const auto origin = origin_of(db, run.job_id);
    if (!origin || lineage_key(db, run.job_id) != key || !ancestors_share_origin(db, *origin) ||
        (parent_origin && !same_origin(*parent_origin, *origin)))
      continue;
    out.push_back({run, *origin});
  }
  return out;
}

int64_t curve_owner(Database& db, int64_t job_id) {
  Statement q(db.handle(), "SELECT source_job_id FROM job_reuse WHERE job_id = ?");
  q.bind(1, job_id);
  return q.step() ? q.int64(0) : job_id;
}

ReuseClaim take_reused_run(Database& db, int64_t job_id, int64_t source, int64_t now_ms) {
  bool offered = false;
  for (const ReuseCandidate& c : reuse_candidates(db, job_id)) offered |= c.run.job_id == source;
  if (!offered) return ReuseClaim::kNotACandidate;
  Statement add(db.handle(), "INSERT INTO job_reuse(job_id, source_job_id) VALUES (?, ?)");
  add.bind(1, job_id).bind(2, source);
  add.run();
  Statement u(
      db.handle(),
      with_job_states("UPDATE jobs SET state = {SUCCEEDED}, step = s.step, last_train_loss = "
                      "s.last_train_loss, last_val_loss = s.last_val_loss, spikes = s.spikes, "
                      "message = 'reused job ' || s.id || ' of sweep ' || s.sweep_id || ': same "
                      "config, data and trainer', updated_ms = ?1 FROM jobs s WHERE s.id = ?2 AND "
                      "jobs.id = ?3")
          .c_str());
  u.bind(1, now_ms).bind(2, source).bind(3, job_id);
  u.run();
  // The source's summary, naming it: the results read a reused run as the run it reused.
  Statement read(db.handle(), "SELECT summary FROM run_summaries WHERE job_id = ?");
  read.bind(1, source);
  read.step();  // a candidate has one (origin_of read it)
  json summary = json::parse(read.text(0));
  summary["reused_from_job"] = source;
  Statement s(db.handle(),
              "INSERT OR REPLACE INTO run_summaries(job_id, attempt, summary) "
              "SELECT id, attempt, ?1 FROM jobs WHERE id = ?2");
  s.bind(1, summary.dump()).bind(2, job_id);
  s.run();
  return ReuseClaim::kTaken;
}

}  // namespace server
