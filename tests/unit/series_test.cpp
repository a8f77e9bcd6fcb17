// Metric series: the chunk codec (lossless, compact, refuses what it cannot have written) and the
// chunked store on a real SQLite file (replacement, truncation, exact downsampling, spike events,
// and the upgrade from the per-step tables of schema version 4).
#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <filesystem>
#include <limits>
#include <random>

#include "server/storage/migrations.h"
#include "server/storage/series_codec.h"
#include "server/storage/series_store.h"
#include "server/storage/store.h"

using namespace server;

namespace {

uint64_t bits(double v) { return std::bit_cast<uint64_t>(v); }

void expect_same(const std::vector<SeriesPoint>& a, const std::vector<SeriesPoint>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].step, b[i].step) << i;
    EXPECT_EQ(bits(a[i].value), bits(b[i].value))
        << "point " << i << ": " << a[i].value << " vs " << b[i].value;
    EXPECT_EQ(a[i].flagged, b[i].flagged) << i;
  }
}

// A training run's fixed fields over 64 steps, as our trainer reports them: a noisy decreasing
// loss, a cosine lr, a noisy grad norm, token counts, and a clock rounded to microseconds.
struct RealisticStep {
  std::vector<SeriesPoint> loss, lr, grad_norm, tokens, elapsed;
};
RealisticStep realistic_chunk(int64_t first_step, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0, 1);
  RealisticStep r;
  double clock = 0.2 * double(first_step);
  for (int64_t s = first_step; s < first_step + 64; ++s) {
    clock += 0.2 + 0.002 * noise(rng);
    r.loss.push_back({s, 3.0 * std::exp(-double(s) / 5000) + 0.05 * noise(rng), false});
    r.lr.push_back({s, 3e-4 * 0.5 * (1 + std::cos(M_PI * double(s) / 100000)), false});
    r.grad_norm.push_back({s, 0.4 + 0.02 * noise(rng), false});
    r.tokens.push_back({s, 524288.0 * double(s), false});
    r.elapsed.push_back({s, std::round(clock * 1e6) / 1e6, false});
  }
  return r;
}

TEST(SeriesCodec, EveryDoubleComesBackBitForBit) {
  const double specials[] = {0.0,
                             -0.0,
                             std::numeric_limits<double>::infinity(),
                             -std::numeric_limits<double>::infinity(),
                             std::numeric_limits<double>::quiet_NaN(),
                             std::bit_cast<double>(uint64_t(0x7ff8dead00000001)),
                             std::numeric_limits<double>::denorm_min(),
                             std::numeric_limits<double>::max(),
                             1e-300,
                             3.0};
  std::vector<SeriesPoint> points;
  int64_t step = 5;
  for (double v : specials) points.push_back({step++, v, step % 3 == 0});
  expect_same(decode_series_chunk(encode_series_chunk(points)), points);

  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<SeriesPoint> random;
    int64_t s = int64_t(rng() % 1000);
    const size_t n = 1 + rng() % 100;
    for (size_t i = 0; i < n; ++i) {
      s += 1 + int64_t(rng() % (trial % 2 ? 1 : 50));  // consecutive and gapped steps
      const double v = trial % 3 == 0   ? std::bit_cast<double>(rng())
                       : trial % 3 == 1 ? double(int64_t(rng() % 100000))
                                        : double(rng() % 1000) / 1e6;
      random.push_back({s, v, rng() % 7 == 0});
    }
    expect_same(decode_series_chunk(encode_series_chunk(random)), random);
  }
}

TEST(SeriesCodec, ATrainingStepCostsAboutTwentyBytesAcrossItsFiveFields) {
  size_t bytes = 0, points = 0;
  for (uint32_t c = 0; c < 20; ++c) {
    const RealisticStep r = realistic_chunk(1 + 64 * int64_t(c), c);
    for (const auto* series : {&r.loss, &r.lr, &r.grad_norm, &r.tokens, &r.elapsed}) {
      const std::string encoded = encode_series_chunk(*series);
      expect_same(decode_series_chunk(encoded), *series);
      bytes += encoded.size();
    }
    points += r.loss.size();
  }
  const double per_step = double(bytes) / double(points);
  // Three noisy doubles at ~8 bytes each, tokens and clock at ~1-3, consecutive steps free.
  EXPECT_LT(per_step, 30.0);
  EXPECT_GT(per_step, 15.0);  // a noisy double cannot shrink much: the figure is real
  RecordProperty("bytes_per_step", std::to_string(per_step));
  std::printf("codec: %.1f bytes per training step (5 fields)\n", per_step);
  // Counters and clocks take the integer path.
  const RealisticStep r = realistic_chunk(1, 99);
  EXPECT_LT(encode_series_chunk(r.tokens).size(), 64u + 16);  // a byte a step
  EXPECT_LT(encode_series_chunk(r.elapsed).size(), 64u * 3);
}

TEST(SeriesCodec, RefusesWhatItCannotHaveWritten) {
  const RealisticStep r = realistic_chunk(1, 1);
  std::vector<SeriesPoint> flagged = r.loss;
  flagged[3].flagged = flagged[40].flagged = true;
  const std::vector<SeriesPoint>* examples[] = {&flagged, &r.tokens};
  for (const std::vector<SeriesPoint>* series : examples) {
    const std::string good = encode_series_chunk(*series);
    for (size_t cut = 0; cut < good.size(); ++cut)
      EXPECT_THROW(decode_series_chunk(good.substr(0, cut)), SeriesCodecError) << "cut at " << cut;
    EXPECT_THROW(decode_series_chunk(good + "x"), SeriesCodecError);
    std::string other_version = good;
    other_version[0] = 2;
    try {
      decode_series_chunk(other_version);
      ADD_FAILURE() << "version 2 accepted";
    } catch (const SeriesCodecError& e) {
      EXPECT_NE(std::string(e.what()).find("version 2"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(encode_series_chunk({}), SeriesCodecError);
  EXPECT_THROW(encode_series_chunk({{2, 1, false}, {2, 1, false}}), SeriesCodecError);
  // Random bytes: an error or some points, never a crash (fuzz/fuzz_series_chunk goes further).
  std::mt19937_64 rng(3);
  for (int i = 0; i < 20000; ++i) {
    std::string junk(rng() % 40, '\0');
    for (char& c : junk) c = char(rng());
    if (!junk.empty()) junk[0] = 1;
    try {
      decode_series_chunk(junk);
    } catch (const SeriesCodecError&) {
    }
  }
}

TEST(SeriesCodec, SummaryBlocksRoundTripAndRefuseDamage) {
  std::vector<ChunkSummary> block;
  const RealisticStep r = realistic_chunk(64 * 33, 5);
  block.push_back(summarize_chunk(33, r.loss));
  std::vector<SeriesPoint> no_finite = {{64 * 40, NAN, false}, {64 * 40 + 9, INFINITY, true}};
  block.push_back(summarize_chunk(40, no_finite));
  EXPECT_EQ(block[0].points, 64);
  EXPECT_EQ(block[1].finite, 0);
  EXPECT_EQ(block[1].flagged, 2);
  const std::string bytes = encode_summary_block(block);
  const auto back = decode_summary_block(2, bytes);
  ASSERT_EQ(back.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(back[i].chunk, block[i].chunk);
    EXPECT_EQ(back[i].first_step, block[i].first_step);
    EXPECT_EQ(back[i].last_step, block[i].last_step);
    EXPECT_EQ(back[i].points, block[i].points);
    EXPECT_EQ(back[i].finite, block[i].finite);
    EXPECT_EQ(back[i].flagged, block[i].flagged);
    EXPECT_EQ(bits(back[i].min_value), bits(block[i].min_value));
    EXPECT_EQ(bits(back[i].sum), bits(block[i].sum));
  }
  for (size_t cut = 0; cut < bytes.size(); ++cut)
    EXPECT_THROW(decode_summary_block(2, bytes.substr(0, cut)), SeriesCodecError);
  EXPECT_THROW(decode_summary_block(2, bytes + "x"), SeriesCodecError);
  EXPECT_THROW(encode_summary_block({block[1], block[0]}), SeriesCodecError);  // not increasing
  ChunkSummary other_block = block[0];
  other_block.chunk = 48;
  EXPECT_THROW(encode_summary_block({block[0], other_block}), SeriesCodecError);
}

class SeriesStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::temp_directory_path() /
            ("series_test_" + std::to_string(getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".db");
    std::filesystem::remove(path_);
    db_ = std::make_unique<Database>(path_.string());
    migrate(*db_);
    series_ = std::make_unique<SeriesStore>(*db_);
  }
  void TearDown() override {
    series_.reset();
    db_.reset();
    for (const char* suffix : {"", "-wal", "-shm"})
      std::filesystem::remove(path_.string() + suffix);
  }
  std::filesystem::path path_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<SeriesStore> series_;
};

std::vector<SeriesPoint> steps(int64_t first, int64_t last, double value) {
  std::vector<SeriesPoint> out;
  for (int64_t s = first; s <= last; ++s) out.push_back({s, value + double(s), false});
  return out;
}

TEST_F(SeriesStoreTest, LaterPointsReplaceEarlierOnesAtTheSameStepAndReplaysChangeNothing) {
  series_->write(1, Metric::kLr, steps(1, 200, 0));
  series_->write(1, Metric::kLr, steps(1, 200, 0));  // a replayed batch
  series_->write(1, Metric::kLr, {{100, -1, false}, {100, -2, true}, {250, 7, false}});
  const auto points = series_->read(1, Metric::kLr);
  ASSERT_EQ(points.size(), 201u);
  EXPECT_EQ(points[98].step, 99);
  EXPECT_EQ(points[99].value, -2);  // the later of the two writes at step 100
  EXPECT_TRUE(points[99].flagged);
  EXPECT_EQ(points.back().step, 250);
  EXPECT_EQ(series_->point_count(Metric::kLr), 201);
  EXPECT_TRUE(series_->read(1, Metric::kTrainLoss).empty());  // series are apart
  EXPECT_TRUE(series_->read(2, Metric::kLr).empty());
  EXPECT_THROW(series_->write(1, Metric::kLr, {{-1, 0, false}}), std::out_of_range);
}

TEST_F(SeriesStoreTest, TruncationDropsEveryMetricAfterTheStepAcrossChunkBoundaries) {
  series_->write(1, Metric::kTrainLoss, steps(0, 300, 0));
  series_->write(1, Metric::kTokens, steps(0, 300, 0));
  series_->write(2, Metric::kTokens, steps(0, 300, 0));
  series_->truncate_after(1, 130);  // in the middle of chunk 2 (128..191)
  for (Metric m : {Metric::kTrainLoss, Metric::kTokens}) {
    const auto points = series_->read(1, m);
    ASSERT_EQ(points.size(), 131u);
    EXPECT_EQ(points.back().step, 130);
  }
  EXPECT_EQ(series_->read(2, Metric::kTokens).size(), 301u);  // another job is untouched
  EXPECT_EQ(series_->point_count(Metric::kTokens), 131 + 301);
  series_->truncate_after(1, 127);  // exactly at a chunk's end
  EXPECT_EQ(series_->read(1, Metric::kTrainLoss).size(), 128u);
  series_->truncate_after(1, -1);
  EXPECT_TRUE(series_->read(1, Metric::kTrainLoss).empty());
  EXPECT_TRUE(series_->downsample(1, Metric::kTrainLoss, 10).empty());
}

// Each bucket's min, max and mean are those of the raw points in its step range, and the
// buckets tile the series, whichever path (summaries or points) produced them.
void expect_exact_buckets(const std::vector<CurveBucket>& buckets,
                          const std::vector<SeriesPoint>& points) {
  size_t next = 0;
  for (const CurveBucket& b : buckets) {
    ASSERT_LT(next, points.size());
    EXPECT_EQ(b.first_step, points[next].step);
    double lo = INFINITY, hi = -INFINITY, sum = 0;
    int finite = 0;
    bool flagged = false;
    for (; next < points.size() && points[next].step <= b.last_step; ++next) {
      const double v = points[next].value;
      flagged = flagged || points[next].flagged || !std::isfinite(v);
      if (!std::isfinite(v)) continue;
      lo = std::min(lo, v), hi = std::max(hi, v), sum += v, ++finite;
    }
    EXPECT_EQ(b.flagged, flagged) << b.first_step;
    if (finite == 0) {
      EXPECT_TRUE(std::isnan(b.mean_value));
      continue;
    }
    EXPECT_EQ(b.min_value, lo) << b.first_step;
    EXPECT_EQ(b.max_value, hi) << b.first_step;
    EXPECT_NEAR(b.mean_value, sum / finite, 1e-12 * std::fabs(sum / finite)) << b.first_step;
  }
  EXPECT_EQ(next, points.size());
}

TEST_F(SeriesStoreTest, DownsamplingIsExactOverEachBucketAndKeepsSpikesAndNaNVisible) {
  std::mt19937_64 rng(11);
  std::normal_distribution<double> noise(0, 1);
  std::vector<SeriesPoint> points;
  for (int64_t s = 1; s <= 10000; ++s) points.push_back({s, 2 + 0.1 * noise(rng), false});
  points[5370].value = 9, points[5370].flagged = true;
  points[8000].value = NAN;
  for (int64_t s = 6000; s < 6100; ++s)
    points[size_t(s)].value = NAN;  // a whole chunk without a finite value
  series_->write(1, Metric::kTrainLoss, points);
  for (int buckets : {1, 7, 100, 156, 157, 1000, 20000}) {
    SCOPED_TRACE("buckets " + std::to_string(buckets));
    const auto curve = series_->downsample(1, Metric::kTrainLoss, buckets);
    EXPECT_LE(curve.size(), size_t(buckets));
    EXPECT_GE(curve.size(), std::min<size_t>(size_t(buckets), points.size()) * 9 / 10);
    expect_exact_buckets(curve, points);
    const auto spike = std::find_if(curve.begin(), curve.end(), [](const CurveBucket& b) {
      return b.first_step <= 5371 && 5371 <= b.last_step;
    });
    ASSERT_NE(spike, curve.end());
    EXPECT_EQ(spike->max_value, 9);
    EXPECT_TRUE(spike->flagged);
  }
}

TEST_F(SeriesStoreTest, SpikeEventsAreRunsOfConsecutiveFlaggedStepsAcrossChunks) {
  std::vector<SeriesPoint> points = steps(1, 400, 0);
  for (int64_t s : {10, 63, 64, 65, 200, 202, 203}) points[size_t(s - 1)].flagged = true;
  points[300].value = NAN;  // not finite but not flagged: a divergence, not a spike event
  series_->write(1, Metric::kTrainLoss, points);
  EXPECT_EQ(series_->flag_events(1, Metric::kTrainLoss),
            (std::vector<int64_t>{10, 63, 200, 202}));  // 10; 63-65; 200; 202-203
  EXPECT_TRUE(series_->flag_events(2, Metric::kTrainLoss).empty());
}

TEST(SeriesUpgrade, PointsStoredByTheRowPerStepSchemaMoveIntoSeries) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("series_upgrade_" + std::to_string(getpid()) + ".db");
  std::filesystem::remove(path);
  {
    Database db(path.string());
    const auto& all = embedded_migrations();
    migrate(db, std::vector<Migration>(all.begin(), all.begin() + 4));  // the schema before series
    db.exec(
        "INSERT INTO sweeps(id, name, spec, priority, max_concurrency, targets, baseline, "
        "submitted_ms) "
        "VALUES (1, 's', '', 0, 0, '[]', '', 0)");
    db.exec(
        "INSERT INTO jobs(id, sweep_id, idx, label, ablation, seed, optimizer, batch_tokens, "
        "config_hash, config, "
        "backend, gpus, state, max_attempts, max_steps, updated_ms) "
        "VALUES (7, 1, 0, 'a', '', 1, 'adamw', 256, 'h', '{}', 'cpu', 0, 'SUCCEEDED', 1, 100, 0)");
    Statement ins(db.handle(), "INSERT INTO metric_points VALUES (7, ?, ?, ?, ?, ?, ?, ?)");
    for (int64_t s = 1; s <= 100; ++s)
      ins.bind(1, s)
          .bind(2, s == 50 ? NAN : 3.0 - 0.01 * double(s))
          .bind(3, 1e-3)
          .bind(4, 0.5)
          .bind(5, 256.0 * double(s))
          .bind(6, 0.1 * double(s))
          .bind(7, int64_t(s == 40))
          .run();
  }
  Store store(path.string());
  const auto loss = store.metrics.series_points(7, "train_loss");
  ASSERT_EQ(loss.size(), 100u);
  EXPECT_DOUBLE_EQ(loss[9].value, 2.9);
  EXPECT_TRUE(std::isnan(loss[49].value));
  EXPECT_TRUE(loss[39].flagged);  // the spike column became the loss point's flag
  EXPECT_EQ(store.metrics.series_points(7, "tokens").at(99).value, 25600.0);
  EXPECT_DOUBLE_EQ(store.metrics.series_points(7, "elapsed_s").at(99).value, 10.0);
  Database db(path.string());
  Statement old(
      db.handle(),
      "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('metric_points', 'curve_blocks')");
  ASSERT_TRUE(old.step());
  EXPECT_EQ(old.int64(0), 0);
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix);
}

}  // namespace
