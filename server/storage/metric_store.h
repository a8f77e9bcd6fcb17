// A run's curves and results: the fixed fields of each training step and the named metrics as
// series (series_store.h), the evaluations, and the run summaries; the downsampled reads of the
// dashboard and the full reads of the analysis and the export. Reports are fenced by
// (job_id, attempt) (job_rows.h). Every method is one transaction under the database's mutex.
// Lifetime: holds the CoordinatorDatabase by reference; main() keeps both alive (store.h).
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "server/storage/database.h"
#include "server/storage/job_rows.h"

namespace server {

// NaN: a time not recorded (elapsed_s of a replayed eval the store did not have; train_s from a
// worker older than it). Stored as NULL; a later NULL never replaces a recorded time.
constexpr double kUnknownSeconds = std::numeric_limits<double>::quiet_NaN();
struct EvalRow {
  int64_t step = 0;
  double val_loss = 0, tokens = 0;
  double elapsed_s = kUnknownSeconds;  // wall-clock since the run started
  double train_s = kUnknownSeconds;    // training time, evaluations excluded
};

class MetricStore {
 public:
  explicit MetricStore(CoordinatorDatabase& database) : database_(database) {}

  // A batch of a running job's series and evaluations; the job becomes RUNNING. Each series is
  // stored under its name: a step field the coordinator keeps (trainer_core/train/
  // record_fields.h: train_loss carrying the loss-spike flags, lr, grad_norm, tokens, elapsed_s)
  // or a named metric. resumed_from_step >= 0: a resumed attempt, whose points after that step
  // replace the stored.
  Fence store_metrics(const JobRef& ref, const std::vector<NamedSeries>& series,
                      const std::vector<EvalRow>& evals, int64_t resumed_from_step, int64_t now_ms);

  std::vector<EvalRow> eval_points(int64_t job_id);
  // Loss-spike events stored so far for a job (runs of consecutive flagged training-loss steps,
  // over its curve with a fork's ancestors), the first step of each: what health rules read.
  std::vector<int64_t> loss_spike_events(int64_t job_id);
  // Every job's evaluations in one sweep, by job id (jobs without any are absent).
  std::map<int64_t, std::vector<EvalRow>> sweep_eval_points(int64_t sweep_id);
  // The training curve in at most `buckets` step ranges (series_store.h: whole chunks, widths
  // within one chunk of each other), each with min, max and mean.
  std::vector<CurveBucket> downsampled_curve(int64_t job_id, int buckets);
  // Many curves in one read transaction.
  std::map<int64_t, std::vector<CurveBucket>> downsampled_curves(
      const std::vector<int64_t>& job_ids, int buckets);
  // A named metric of many jobs, downsampled the same way; nullopt when no job has the name.
  std::optional<std::map<int64_t, std::vector<CurveBucket>>> downsampled_metric(
      const std::vector<int64_t>& job_ids, const std::string& name, int buckets);
  // The named metrics a job has points of.
  std::vector<std::string> metric_names(int64_t job_id);
  // Every point of one series of a job, a step field's or a named metric's (empty: none).
  std::vector<SeriesPoint> series_points(int64_t job_id, const std::string& name);
  // The run summaries (JSON, the trainer's summary record) of a sweep's jobs, by job id.
  std::map<int64_t, std::string> summaries(int64_t sweep_id);
  int64_t metric_point_count();  // training-loss points over every job (/metrics)

 private:
  CoordinatorDatabase& database_;
};

}  // namespace server
