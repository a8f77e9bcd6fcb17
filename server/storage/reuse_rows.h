// Reuse of finished runs in the coordinator's tables (migrations/014). A job of a sweep with
// `reuse: true` is offered, at lease time, a SUCCEEDED run of any sweep that it would reproduce:
//   - the same lineage: the same config hash, and for a fork a parent of the same lineage
//     branched at the same step (a fork's stored config does not name its parent);
//   - trained, not itself reused (a reused job names the run that trained, never a chain);
//   - its summary names its dataset and trainer, as every ancestor's does alike (a fork whose
//     prefix another binary trained is not that binary's run), and for a fork as its own
//     parent's summary does (so a fork is offered nothing until its parent has finished).
// The trainer about to run the job takes the offer only when its data and identity are the
// run's (trainer_core/train/reuse.h). Taken, the job ends SUCCEEDED with the run's summary and
// state, and its curve, evaluations and checkpoints are read from the run's (stored once).
// Helpers run inside the caller's lock and transaction (database.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "server/storage/job_rows.h"
#include "server/storage/sqlite_db.h"
#include "trainer_core/config/train_config.h"

namespace server {

// A finished run a job may take the results of, and the offer its trainer checks: the run's job
// with the dataset and trainer its summary names.
struct ReuseCandidate {
  RunRef run;
  trainer_core::ReusableRunConfig offer;
};

// The runs job `job_id` may take the results of, newest first (at most the newest 20 of its
// config hash are looked at).
std::vector<ReuseCandidate> reuse_candidates(Database& db, int64_t job_id);

// The job whose stored curve a job reads: the run it reused, else itself.
int64_t curve_owner(Database& db, int64_t job_id);

enum class ReuseClaim { kTaken, kNotACandidate };

// Ends job `job_id` (leased, attempt fenced by the caller) as having taken `source`'s results:
// SUCCEEDED with the source's step, losses, spikes and summary (reused_from_job set), and its
// job_reuse row. kNotACandidate, changing nothing, when `source` is not among its candidates.
ReuseClaim take_reused_run(Database& db, int64_t job_id, int64_t source, int64_t now_ms);

}  // namespace server
