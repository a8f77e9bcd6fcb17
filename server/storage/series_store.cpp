#include "server/storage/series_store.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>

namespace server {
namespace {

int64_t chunk_of(int64_t step) { return step / SeriesStore::kChunkSteps; }  // steps are >= 0

int64_t id_of(MetricId m) { return m.value; }

// Calls `row` for each row of a bound statement and leaves it reset for reuse, even on a throw.
template <typename F>
void each_row(Statement& q, F&& row) {
  struct Reset {
    Statement& q;
    ~Reset() { q.reset(); }
  } reset{q};
  while (q.step()) row(q);
}

// Accumulates points or chunk summaries into `n` buckets; the caller says which bucket each
// goes to, so a bucket holds whole chunks or single points and its figures are exact.
class Bucketer {
 public:
  explicit Bucketer(int64_t n)
      : out_(size_t(n)), sums_(size_t(n)), counts_(size_t(n)), seen_(size_t(n)) {}
  void add(int64_t bucket, int64_t first_step, int64_t last_step, double min_value,
           double max_value, double sum, int64_t finite, bool flagged) {
    const size_t b = size_t(bucket);
    CurveBucket& c = out_[b];
    if (!seen_[b]) c.first_step = first_step;
    seen_[b] = true;
    c.last_step = last_step;
    c.flagged = c.flagged || flagged;
    if (finite == 0) return;
    if (counts_[b] == 0) c.min_value = min_value, c.max_value = max_value;
    c.min_value = std::min(c.min_value, min_value);
    c.max_value = std::max(c.max_value, max_value);
    sums_[b] += sum;
    counts_[b] += finite;
  }
  void add(int64_t bucket, const SeriesPoint& p) {
    const bool finite = std::isfinite(p.value);
    add(bucket, p.step, p.step, p.value, p.value, finite ? p.value : 0, finite ? 1 : 0,
        p.flagged || !finite);
  }
  std::vector<CurveBucket> finish() {
    std::vector<CurveBucket> filled;
    for (size_t b = 0; b < out_.size(); ++b) {
      if (!seen_[b]) continue;  // a gap in the steps
      if (counts_[b])
        out_[b].mean_value = sums_[b] / double(counts_[b]);
      else
        out_[b].min_value = out_[b].max_value = out_[b].mean_value = std::nan("");
      filled.push_back(out_[b]);
    }
    return filled;
  }

 private:
  std::vector<CurveBucket> out_;
  std::vector<double> sums_;
  std::vector<int64_t> counts_;
  std::vector<bool> seen_;
};

// Buckets of equal step ranges over points in step order.
std::vector<CurveBucket> downsample_points(const std::vector<SeriesPoint>& points, int64_t wanted) {
  if (points.empty()) return {};
  const int64_t first = points.front().step, span = points.back().step - first + 1,
                n = std::min(wanted, span);
  Bucketer bucketer(n);
  for (const SeriesPoint& p : points) bucketer.add((p.step - first) * n / span, p);
  return bucketer.finish();
}

// Runs of consecutive flagged steps, fed points in step order: each run is one event.
class FlagRuns {
 public:
  void add(const SeriesPoint& p) {
    if (!p.flagged) return;
    if (previous_ == INT64_MIN || p.step != previous_ + 1) starts_.push_back(p.step);
    previous_ = p.step;
  }
  std::vector<int64_t> events() { return std::move(starts_); }

 private:
  std::vector<int64_t> starts_;  // the first step of each event
  int64_t previous_ = INT64_MIN;
};

}  // namespace

SeriesStore::SeriesStore(Database& db)
    : db_(db),
      read_chunk_(db.handle(),
                  "SELECT points FROM series_chunks WHERE job_id = ? AND metric = ? AND chunk = ?"),
      write_chunk_(db.handle(),
                   "INSERT OR REPLACE INTO series_chunks(job_id, metric, chunk, points) VALUES (?, "
                   "?, ?, ?)"),
      delete_chunk_(db.handle(),
                    "DELETE FROM series_chunks WHERE job_id = ? AND metric = ? AND chunk = ?"),
      read_block_(
          db.handle(),
          "SELECT summaries FROM series_summaries WHERE job_id = ? AND metric = ? AND block = ?"),
      write_block_(db.handle(),
                   "INSERT OR REPLACE INTO series_summaries(job_id, metric, block, summaries) "
                   "VALUES (?, ?, ?, ?)"),
      delete_block_(db.handle(),
                    "DELETE FROM series_summaries WHERE job_id = ? AND metric = ? AND block = ?"),
      read_series_(
          db.handle(),
          "SELECT points FROM series_chunks WHERE job_id = ? AND metric = ? ORDER BY chunk"),
      read_blocks_(db.handle(),
                   "SELECT block, summaries FROM series_summaries WHERE job_id = ? AND metric = ? "
                   "ORDER BY block"),
      read_first_block_(db.handle(),
                        "SELECT block, summaries FROM series_summaries WHERE job_id = ? AND metric "
                        "= ? ORDER BY block LIMIT 1"),
      read_last_block_(db.handle(),
                       "SELECT block, summaries FROM series_summaries WHERE job_id = ? AND metric "
                       "= ? ORDER BY block DESC LIMIT 1") {}

std::vector<SeriesPoint> SeriesStore::read_chunk(int64_t job_id, int64_t metric, int64_t chunk) {
  std::vector<SeriesPoint> points;
  each_row(read_chunk_.bind(1, job_id).bind(2, metric).bind(3, chunk),
           [&](const Statement& q) { points = decode_series_chunk(q.blob(0)); });
  return points;
}

std::optional<ChunkSummary> SeriesStore::write_chunk(int64_t job_id, int64_t metric, int64_t chunk,
                                                     const std::vector<SeriesPoint>& points) {
  if (points.empty()) {
    delete_chunk_.bind(1, job_id).bind(2, metric).bind(3, chunk).run();
    return std::nullopt;
  }
  write_chunk_.bind(1, job_id)
      .bind(2, metric)
      .bind(3, chunk)
      .bind_blob(4, encode_series_chunk(points))
      .run();
  return summarize_chunk(chunk, points);
}

void SeriesStore::update_block(int64_t job_id, int64_t metric, int64_t block,
                               const std::function<void(std::vector<ChunkSummary>&)>& change) {
  std::vector<ChunkSummary> summaries;
  each_row(read_block_.bind(1, job_id).bind(2, metric).bind(3, block),
           [&](const Statement& q) { summaries = decode_summary_block(block, q.blob(0)); });
  change(summaries);
  if (summaries.empty()) {
    delete_block_.bind(1, job_id).bind(2, metric).bind(3, block).run();
    return;
  }
  std::sort(summaries.begin(), summaries.end(),
            [](const ChunkSummary& a, const ChunkSummary& b) { return a.chunk < b.chunk; });
  write_block_.bind(1, job_id)
      .bind(2, metric)
      .bind(3, block)
      .bind_blob(4, encode_summary_block(summaries))
      .run();
}

namespace {
// Replaces (or, with nullopt, removes) one chunk's summary in its block's list.
void set_summary(std::vector<ChunkSummary>& summaries, int64_t chunk,
                 const std::optional<ChunkSummary>& summary) {
  std::erase_if(summaries, [chunk](const ChunkSummary& s) { return s.chunk == chunk; });
  if (summary) summaries.push_back(*summary);
}
}  // namespace

void SeriesStore::write(int64_t job_id, MetricId metric, std::vector<SeriesPoint> points) {
  for (const SeriesPoint& p : points)
    if (p.step < 0 || p.step > kMaxStep)
      throw std::out_of_range("step " + std::to_string(p.step) + " outside 0.." +
                              std::to_string(kMaxStep));
  std::stable_sort(points.begin(), points.end(),
                   [](const SeriesPoint& a, const SeriesPoint& b) { return a.step < b.step; });
  std::map<int64_t, std::vector<std::pair<int64_t, std::optional<ChunkSummary>>>> by_block;
  for (size_t i = 0; i < points.size();) {
    const int64_t chunk = chunk_of(points[i].step);
    size_t j = i;
    while (j < points.size() && chunk_of(points[j].step) == chunk) ++j;
    std::vector<SeriesPoint> merged = read_chunk(job_id, id_of(metric), chunk);
    merged.insert(merged.end(), points.begin() + ptrdiff_t(i), points.begin() + ptrdiff_t(j));
    // Stored points first, then the new ones in arrival order: the last at each step wins.
    std::stable_sort(merged.begin(), merged.end(),
                     [](const SeriesPoint& a, const SeriesPoint& b) { return a.step < b.step; });
    std::vector<SeriesPoint> unique;
    unique.reserve(merged.size());
    for (const SeriesPoint& p : merged) {
      if (!unique.empty() && unique.back().step == p.step)
        unique.back() = p;
      else
        unique.push_back(p);
    }
    by_block[chunk / kChunksPerSummaryBlock].push_back(
        {chunk, write_chunk(job_id, id_of(metric), chunk, unique)});
    i = j;
  }
  for (const auto& block : by_block)
    update_block(job_id, id_of(metric), block.first,
                 [&block](std::vector<ChunkSummary>& summaries) {
                   for (const auto& [chunk, summary] : block.second)
                     set_summary(summaries, chunk, summary);
                 });
}

void SeriesStore::truncate_after(int64_t job_id, int64_t step) {
  const int64_t last_chunk = chunk_of(std::max<int64_t>(step, 0)),
                last_block = last_chunk / kChunksPerSummaryBlock;
  Statement chunks(db_.handle(), "DELETE FROM series_chunks WHERE job_id = ? AND chunk > ?");
  chunks.bind(1, job_id).bind(2, last_chunk).run();
  Statement blocks(db_.handle(), "DELETE FROM series_summaries WHERE job_id = ? AND block > ?");
  blocks.bind(1, job_id).bind(2, last_block).run();
  std::vector<int64_t> metrics;
  Statement q(db_.handle(), "SELECT metric FROM series_summaries WHERE job_id = ? AND block = ?");
  each_row(q.bind(1, job_id).bind(2, last_block),
           [&](const Statement& row) { metrics.push_back(row.int64(0)); });
  for (int64_t metric : metrics) {
    std::vector<SeriesPoint> points = read_chunk(job_id, metric, last_chunk);
    std::erase_if(points, [step](const SeriesPoint& p) { return p.step > step; });
    const std::optional<ChunkSummary> summary = write_chunk(job_id, metric, last_chunk, points);
    update_block(job_id, metric, last_block, [&](std::vector<ChunkSummary>& summaries) {
      std::erase_if(summaries,
                    [last_chunk](const ChunkSummary& s) { return s.chunk > last_chunk; });
      set_summary(summaries, last_chunk, summary);
    });
  }
}

std::vector<SeriesPoint> SeriesStore::read(int64_t job_id, MetricId metric) {
  std::vector<SeriesPoint> out;
  each_row(read_series_.bind(1, job_id).bind(2, id_of(metric)), [&](const Statement& q) {
    const std::vector<SeriesPoint> chunk = decode_series_chunk(q.blob(0));
    out.insert(out.end(), chunk.begin(), chunk.end());
  });
  return out;
}

std::vector<ChunkSummary> SeriesStore::summaries(int64_t job_id, MetricId metric) {
  std::vector<ChunkSummary> out;
  each_row(read_blocks_.bind(1, job_id).bind(2, id_of(metric)), [&](const Statement& q) {
    const std::vector<ChunkSummary> block = decode_summary_block(q.int64(0), q.blob(1));
    out.insert(out.end(), block.begin(), block.end());
  });
  return out;
}

std::optional<ChunkSummary> SeriesStore::end_summary(int64_t job_id, MetricId metric, bool last) {
  std::optional<ChunkSummary> out;
  each_row((last ? read_last_block_ : read_first_block_).bind(1, job_id).bind(2, id_of(metric)),
           [&](const Statement& q) {
             const std::vector<ChunkSummary> block = decode_summary_block(q.int64(0), q.blob(1));
             out = last ? block.back() : block.front();
           });
  return out;
}

std::vector<CurveBucket> SeriesStore::downsample(int64_t job_id, MetricId metric, int buckets) {
  const std::optional<ChunkSummary> head = end_summary(job_id, metric, false),
                                    tail = end_summary(job_id, metric, true);
  if (!head || !tail) return {};
  const int64_t wanted = std::max(1, buckets), chunks = tail->chunk - head->chunk + 1;
  if (chunks >= wanted) {
    // Every bucket holds one or more whole chunks: read their summaries, not their points.
    Bucketer bucketer(wanted);
    for (const ChunkSummary& s : summaries(job_id, metric))
      bucketer.add((s.chunk - head->chunk) * wanted / chunks, s.first_step, s.last_step,
                   s.min_value, s.max_value, s.sum, s.finite, s.flagged > 0);
    return bucketer.finish();
  }
  return downsample_points(read(job_id, metric), wanted);
}

std::vector<SeriesPoint> SeriesStore::read(const std::vector<CurveSegment>& curve,
                                           MetricId metric) {
  return along_curve<SeriesPoint>(curve, [&](int64_t job_id) { return read(job_id, metric); });
}

std::vector<CurveBucket> SeriesStore::downsample(const std::vector<CurveSegment>& curve,
                                                 MetricId metric, int buckets) {
  if (curve.size() == 1) return downsample(curve[0].job_id, metric, buckets);
  return downsample_points(read(curve, metric), std::max(1, buckets));
}

std::vector<int64_t> SeriesStore::flag_events(const std::vector<CurveSegment>& curve,
                                              MetricId metric) {
  if (curve.size() == 1) return flag_events(curve[0].job_id, metric);
  FlagRuns runs;
  for (const SeriesPoint& p : read(curve, metric)) runs.add(p);
  return runs.events();
}

std::vector<int64_t> SeriesStore::flag_events(int64_t job_id, MetricId metric) {
  FlagRuns runs;
  for (const ChunkSummary& s : summaries(job_id, metric))
    if (s.flagged != 0)
      for (const SeriesPoint& p : read_chunk(job_id, id_of(metric), s.chunk)) runs.add(p);
  return runs.events();
}

int64_t SeriesStore::point_count(MetricId metric) {
  int64_t n = 0;
  Statement q(db_.handle(), "SELECT block, summaries FROM series_summaries WHERE metric = ?");
  q.bind(1, id_of(metric));
  while (q.step())
    for (const ChunkSummary& s : decode_summary_block(q.int64(0), q.blob(1))) n += s.points;
  return n;
}

int64_t SeriesStore::metric_id(const std::string& name) {
  Statement add(db_.handle(), "INSERT OR IGNORE INTO metric_names(name) VALUES (?)");
  add.bind(1, name).run();
  return *find_metric(name);
}

std::optional<int64_t> SeriesStore::find_metric(const std::string& name) {
  Statement q(db_.handle(), "SELECT id FROM metric_names WHERE name = ?");
  q.bind(1, name);
  if (!q.step()) return std::nullopt;
  return q.int64(0);
}

std::vector<std::string> SeriesStore::metric_names(int64_t job_id) {
  std::vector<std::string> out;
  Statement q(db_.handle(),
              "SELECT n.name FROM metric_names n WHERE n.id > ? AND EXISTS (SELECT 1 FROM "
              "series_summaries s "
              "WHERE s.job_id = ? AND s.metric = n.id) ORDER BY n.name");
  each_row(q.bind(1, int64_t(Metric::kElapsedSeconds)).bind(2, job_id),
           [&](const Statement& row) { out.push_back(row.text(0)); });
  return out;
}

void convert_row_points_to_series(Database& db) {
  {
    Statement exists(db.handle(),
                     "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'metric_points'");
    if (!exists.step()) return;
  }
  SeriesStore series(db);
  constexpr Metric kColumns[] = {Metric::kTrainLoss, Metric::kLr, Metric::kGradNorm,
                                 Metric::kTokens, Metric::kElapsedSeconds};
  std::vector<SeriesPoint> columns[std::size(kColumns)];
  int64_t job = -1;
  auto flush = [&] {
    for (size_t c = 0; c < std::size(kColumns); ++c)
      series.write(job, kColumns[c], std::move(columns[c])), columns[c].clear();
  };
  {
    Statement q(db.handle(),
                "SELECT job_id, step, train_loss, lr, grad_norm, tokens, elapsed_s, spike FROM "
                "metric_points ORDER BY job_id, step");
    while (q.step()) {
      if (q.int64(0) != job && job >= 0) flush();
      job = q.int64(0);
      const int64_t step = q.int64(1);
      if (step < 0 || step > SeriesStore::kMaxStep)
        continue;  // older coordinators accepted any step
      for (size_t c = 0; c < std::size(kColumns); ++c)
        columns[c].push_back({step, q.real(int(c) + 2), c == 0 && q.int64(7) != 0});
    }
    if (job >= 0) flush();
  }
  db.exec("DROP TABLE metric_points; DROP TABLE curve_blocks");
}

}  // namespace server
