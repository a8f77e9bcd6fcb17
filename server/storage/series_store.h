// Metric series in SQLite (migrations/005): every point of every metric of every job, kept
// losslessly in 64-step chunks (series_codec.h), with each chunk's summary (count, min, max,
// sum, flagged) packed 16 to a row as the first downsampling level. Runs inside the caller's
// transaction and lock; not thread-safe itself.
//
// Why: a row per step cost 65 bytes a point on disk and a 1,000-bucket read of a 100k-step curve
// scanned 10k block rows; see bench/orchestration_bench --scale for today's figures.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "server/storage/series_codec.h"
#include "server/storage/sqlite_db.h"

namespace server {

// The fixed fields of a training step, as ids in metric_names (migrations/005).
enum class Metric : int64_t {
  kTrainLoss = 1,
  kLr = 2,
  kGradNorm = 3,
  kTokens = 4,
  kElapsedSeconds = 5
};
// A series' metric: a fixed field or a named metric's id in metric_names.
struct MetricId {
  int64_t value;
  MetricId(Metric m) : value(static_cast<int64_t>(m)) {}  // NOLINT: a fixed field is a metric id
  explicit MetricId(int64_t id) : value(id) {}
};
// Points of one named metric of a step batch.
struct NamedSeries {
  std::string name;
  std::vector<SeriesPoint> points;
};

// One bucket of a downsampled series: min and max keep every spike visible; the mean is over
// the finite values (NaN when none). `flagged`: a flagged point or a non-finite value inside.
struct CurveBucket {
  int64_t first_step = 0, last_step = 0;
  double min_value = 0, max_value = 0, mean_value = 0;
  bool flagged = false;
};

// The part of one job's stored points that belongs to a curve: steps in (after_step, up_to_step].
// A fork's curve is its ancestors' segments up to each branch step, then its own
// (fork_rows.h: curve_segments).
struct CurveSegment {
  int64_t job_id = 0;
  int64_t after_step = -1;
  int64_t up_to_step = std::numeric_limits<int64_t>::max();
  bool holds(int64_t step) const { return step > after_step && step <= up_to_step; }
};

// A curve's points in order (series points, evaluations: anything with a `step`): each
// segment's share of what `own_points(job_id)` gives for its job.
template <typename Point, typename OwnPoints>
std::vector<Point> along_curve(const std::vector<CurveSegment>& curve, OwnPoints&& own_points) {
  std::vector<Point> out;
  for (const CurveSegment& segment : curve)
    for (const Point& p : own_points(segment.job_id))
      if (segment.holds(p.step)) out.push_back(p);
  return out;
}

class SeriesStore {
 public:
  static constexpr int64_t kChunkSteps = 64;
  // Steps are 0..kMaxStep (2^48, far past any run): bucket arithmetic stays inside int64.
  static constexpr int64_t kMaxStep = int64_t(1) << 48;

  explicit SeriesStore(Database& db);

  // Adds points to the series, replacing any stored at the same steps (a replayed batch is a
  // no-op). Within `points`, a later point at the same step wins. Throws std::out_of_range for
  // a step outside 0..kMaxStep.
  void write(int64_t job_id, MetricId metric, std::vector<SeriesPoint> points);
  // Drops every point after `step` in every series of the job (a resumed attempt).
  void truncate_after(int64_t job_id, int64_t step);

  std::vector<SeriesPoint> read(int64_t job_id, MetricId metric);
  // The series in at most `buckets` consecutive step ranges, each bucket's figures exact over
  // [first_step, last_step]. With at least as many chunks as buckets, a bucket is one or more
  // whole chunks, read from their summaries (widths differ by at most one chunk); else buckets
  // are equal step ranges over the points.
  std::vector<CurveBucket> downsample(int64_t job_id, MetricId metric, int buckets);
  // Runs of consecutive flagged steps (loss spike events): the first step of each, ascending.
  std::vector<int64_t> flag_events(int64_t job_id, MetricId metric);
  // The same over a curve of segments (a fork's: its ancestors' points up to the branch steps,
  // then its own). One segment reads as the job_id forms above.
  std::vector<SeriesPoint> read(const std::vector<CurveSegment>& curve, MetricId metric);
  std::vector<CurveBucket> downsample(const std::vector<CurveSegment>& curve, MetricId metric,
                                      int buckets);
  std::vector<int64_t> flag_events(const std::vector<CurveSegment>& curve, MetricId metric);
  // Points stored in one metric over all jobs.
  int64_t point_count(MetricId metric);
  // The id of a named metric, added to metric_names when new (inside the caller's transaction).
  int64_t metric_id(const std::string& name);
  // The named metrics (not the fixed fields) a job has points of, by name.
  std::vector<std::string> metric_names(int64_t job_id);
  // A named metric's id, if any job has used the name.
  std::optional<int64_t> find_metric(const std::string& name);

 private:
  std::vector<SeriesPoint> read_chunk(int64_t job_id, int64_t metric, int64_t chunk);
  // Stores the chunk's points (none: removes it) and returns its new summary.
  std::optional<ChunkSummary> write_chunk(int64_t job_id, int64_t metric, int64_t chunk,
                                          const std::vector<SeriesPoint>& points);
  // Reads a summary block, lets `change` edit its list, writes it back (or removes it when empty).
  void update_block(int64_t job_id, int64_t metric, int64_t block,
                    const std::function<void(std::vector<ChunkSummary>&)>& change);
  std::vector<ChunkSummary> summaries(int64_t job_id, MetricId metric);
  std::optional<ChunkSummary> end_summary(int64_t job_id, MetricId metric, bool last);

  Database& db_;
  // Prepared once: downsampled reads come many jobs at a time.
  Statement read_chunk_, write_chunk_, delete_chunk_, read_block_, write_block_, delete_block_;
  Statement read_series_, read_blocks_, read_first_block_, read_last_block_;
};

// Moves rows of the per-step tables that migrations/005 replaced (metric_points, curve_blocks)
// into series and drops those tables; does nothing once they are gone. Call inside a transaction.
void convert_row_points_to_series(Database& db);

}  // namespace server
