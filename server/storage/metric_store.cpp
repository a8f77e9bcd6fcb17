#include "server/storage/metric_store.h"

#include <algorithm>
#include <map>
#include <set>

#include "server/storage/fork_rows.h"

namespace server {

namespace {
// One metric of many jobs in one read transaction (inside the caller's lock); a fork's curve
// reads through its parent's up to the branch step (fork_rows.h).
std::map<int64_t, std::vector<CurveBucket>> downsample_many(Database& db, SeriesStore& series,
                                                            const std::vector<int64_t>& job_ids,
                                                            MetricId metric, int buckets) {
  Transaction tx(db, Transaction::kRead);  // one consistent view of every curve
  std::map<int64_t, std::vector<CurveBucket>> out;
  for (int64_t id : job_ids) out[id] = series.downsample(curve_segments(db, id), metric, buckets);
  tx.commit();
  return out;
}

// The evaluations a job stored itself, by step.
std::vector<EvalRow> own_evals(Database& db, int64_t job_id) {
  std::vector<EvalRow> out;
  Statement q(db.handle(),
              "SELECT step, val_loss, tokens, elapsed_s, train_s FROM eval_points WHERE job_id = ? "
              "ORDER BY step");
  q.bind(1, job_id);
  while (q.step()) out.push_back({q.int64(0), q.real(1), q.real(2), q.real(3), q.real(4)});
  return out;
}

// A job's evaluations along its curve: a fork's ancestors' up to each branch step, then its own.
std::vector<EvalRow> curve_evals(Database& db, int64_t job_id) {
  return along_curve<EvalRow>(curve_segments(db, job_id),
                              [&](int64_t id) { return own_evals(db, id); });
}

// A fork stores only its steps after the branch: what it replays of its parent's is the parent's.
template <typename Point>
void drop_through(std::vector<Point>& points, int64_t step) {
  std::erase_if(points, [step](const Point& p) { return p.step <= step; });
}
}  // namespace

Fence MetricStore::store_metrics(const JobRef& ref, const std::vector<NamedSeries>& reported_series,
                                 const std::vector<EvalRow>& reported_evals,
                                 int64_t resumed_from_step, int64_t now_ms) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  SeriesStore& series = database_.series();
  Transaction tx(db);
  const Fence f = fence(db, ref);
  if (f != Fence::kOk) return f;
  std::vector<NamedSeries> step_series = reported_series;
  std::vector<EvalRow> evals = reported_evals;
  if (const int64_t branch = fork_branch_step(db, ref.job_id); branch >= 0) {
    for (NamedSeries& named : step_series) drop_through(named.points, branch);
    drop_through(evals, branch);
  }
  if (resumed_from_step >= 0) {
    // A resumed attempt replaces whatever an earlier attempt stored after its checkpoint.
    series.truncate_after(ref.job_id, resumed_from_step);
    Statement d(db.handle(), "DELETE FROM eval_points WHERE job_id = ? AND step > ?");
    d.bind(1, ref.job_id).bind(2, resumed_from_step);
    d.run();
  }
  // Every series under its name: the fixed fields have their ids (migrations/005), a named
  // metric gets one when new. The job's step and last train loss come from the same points.
  int64_t last_step = 0;
  const SeriesPoint* last_loss = nullptr;
  for (const NamedSeries& s : step_series) {
    const MetricId metric(series.metric_id(s.name));
    for (const SeriesPoint& p : s.points) last_step = std::max(last_step, p.step);
    if (metric.value == MetricId(Metric::kTrainLoss).value && !s.points.empty())
      last_loss = &s.points.back();
    series.write(ref.job_id, metric, s.points);
  }
  // A replayed eval carries no wall-clock time (NaN binds as NULL): it keeps the one stored.
  Statement ev(db.handle(),
               "INSERT INTO eval_points(job_id, step, val_loss, tokens, elapsed_s, train_s) "
               "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(job_id, step) DO UPDATE SET "
               "val_loss = excluded.val_loss, tokens = excluded.tokens, "
               "elapsed_s = COALESCE(excluded.elapsed_s, elapsed_s), "
               "train_s = COALESCE(excluded.train_s, train_s)");
  for (const EvalRow& e : evals) {
    ev.bind(1, ref.job_id)
        .bind(2, e.step)
        .bind(3, e.val_loss)
        .bind(4, e.tokens)
        .bind(5, e.elapsed_s)
        .bind(6, e.train_s);
    ev.run();
  }
  Statement upd(db.handle(),
                with_job_states("UPDATE jobs SET state = {RUNNING}, step = MAX(step, ?1), "
                                "last_train_loss = COALESCE(?2, last_train_loss), last_val_loss = "
                                "COALESCE(?3, last_val_loss), "
                                "updated_ms = ?4 WHERE id = ?5")
                    .c_str());
  upd.bind(1, last_step);
  if (last_loss)
    upd.bind(2, last_loss->value);
  else
    upd.bind_null(2);
  if (!evals.empty())
    upd.bind(3, evals.back().val_loss);
  else
    upd.bind_null(3);
  upd.bind(4, now_ms).bind(5, ref.job_id);
  upd.run();
  tx.commit();
  return Fence::kOk;
}

std::vector<EvalRow> MetricStore::eval_points(int64_t job_id) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  Transaction tx(db, Transaction::kRead);
  std::vector<EvalRow> out = curve_evals(db, job_id);
  tx.commit();
  return out;
}

std::map<int64_t, std::vector<EvalRow>> MetricStore::sweep_eval_points(int64_t sweep_id) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  std::map<int64_t, std::vector<EvalRow>> out;
  Statement q(db.handle(),
              "SELECT e.job_id, e.step, e.val_loss, e.tokens, e.elapsed_s, e.train_s "
              "FROM eval_points e JOIN jobs j ON j.id = e.job_id WHERE j.sweep_id = ? "
              "ORDER BY e.job_id, e.step");
  q.bind(1, sweep_id);
  while (q.step())
    out[q.int64(0)].push_back({q.int64(1), q.real(2), q.real(3), q.real(4), q.real(5)});
  // A fork's evaluations along its curve, from the ones just read: its ancestors are in the sweep.
  const std::map<int64_t, std::vector<EvalRow>> own = out;
  const auto own_of = [&](int64_t id) {
    const auto it = own.find(id);
    return it == own.end() ? std::vector<EvalRow>() : it->second;
  };
  Statement forks(db.handle(),
                  "SELECT f.job_id FROM job_forks f JOIN jobs j ON j.id = f.job_id WHERE "
                  "j.sweep_id = ?");
  forks.bind(1, sweep_id);
  while (forks.step())
    if (auto evals = along_curve<EvalRow>(curve_segments(db, forks.int64(0)), own_of);
        !evals.empty())
      out[forks.int64(0)] = std::move(evals);
  return out;
}

std::vector<int64_t> MetricStore::loss_spike_events(int64_t job_id) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  return database_.series().flag_events(curve_segments(db, job_id), Metric::kTrainLoss);
}

std::vector<CurveBucket> MetricStore::downsampled_curve(int64_t job_id, int buckets) {
  return downsampled_curves({job_id}, buckets)[job_id];
}

std::map<int64_t, std::vector<CurveBucket>> MetricStore::downsampled_curves(
    const std::vector<int64_t>& job_ids, int buckets) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  SeriesStore& series = database_.series();
  return downsample_many(db, series, job_ids, Metric::kTrainLoss, buckets);
}

std::optional<std::map<int64_t, std::vector<CurveBucket>>> MetricStore::downsampled_metric(
    const std::vector<int64_t>& job_ids, const std::string& name, int buckets) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  SeriesStore& series = database_.series();
  const std::optional<int64_t> id = series.find_metric(name);
  if (!id || *id <= int64_t(Metric::kElapsedSeconds))
    return std::nullopt;  // fixed fields have their own routes
  return downsample_many(db, series, job_ids, MetricId(*id), buckets);
}

std::vector<SeriesPoint> MetricStore::series_points(int64_t job_id, const std::string& name) {
  MutexLock lock(database_.mutex());
  SeriesStore& series = database_.series();
  const std::optional<int64_t> id = series.find_metric(name);
  if (!id) return {};
  return series.read(curve_segments(database_.db(), job_id), MetricId(*id));
}

std::vector<std::string> MetricStore::metric_names(int64_t job_id) {
  MutexLock lock(database_.mutex());
  SeriesStore& series = database_.series();
  std::set<std::string> names;
  for (const CurveSegment& segment : curve_segments(database_.db(), job_id))
    for (std::string& name : series.metric_names(segment.job_id)) names.insert(std::move(name));
  return {names.begin(), names.end()};
}

int64_t MetricStore::metric_point_count() {
  MutexLock lock(database_.mutex());
  SeriesStore& series = database_.series();
  return series.point_count(Metric::kTrainLoss);
}

std::map<int64_t, std::string> MetricStore::summaries(int64_t sweep_id) {
  MutexLock lock(database_.mutex());
  Database& db = database_.db();
  std::map<int64_t, std::string> out;
  Statement q(db.handle(),
              "SELECT r.job_id, r.summary FROM run_summaries r JOIN jobs j ON j.id = r.job_id "
              "WHERE j.sweep_id = ?");
  q.bind(1, sweep_id);
  while (q.step()) out[q.int64(0)] = q.text(1);
  return out;
}

}  // namespace server
