// The step and eval field tables (trainer_core/train/record_fields.h) against every other place
// that spells the fields: the proto's MetricPoint and EvalPoint, the coordinator's fixed series
// (migrations/005, server/storage/series_store.h), is_fixed_field, the run-record round trip and
// docs/run-records.md. A field renamed in one place and not the others fails here.
#include "trainer_core/train/record_fields.h"

#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "orchestrator.pb.h"
#include "server/api/step_series.h"
#include "server/storage/migrations.h"
#include "server/storage/series_store.h"
#include "step_points.h"
#include "trainer_core/train/run_records.h"

namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using trainer_core::kEvalFields;
using trainer_core::kKept;
using trainer_core::kStepFields;

// The names of a message's fields, but for those listed in `except`.
std::set<std::string> proto_fields(const Descriptor* d, const std::set<std::string>& except) {
  std::set<std::string> out;
  for (int i = 0; i < d->field_count(); ++i)
    if (!except.count(d->field(i)->name())) out.insert(d->field(i)->name());
  return out;
}

template <typename Table>
std::set<std::string> kept_names(const Table& table) {
  std::set<std::string> out;
  for (const auto& f : table)
    if (f.has(kKept)) out.insert(f.name);
  return out;
}

TEST(RecordFields, TheProtoCarriesExactlyTheKeptFieldsUnderTheirNames) {
  const Descriptor* point = orchestrator::v1::MetricPoint::descriptor();
  EXPECT_EQ(proto_fields(point, {"metrics"}), kept_names(kStepFields));
  for (const auto& f : kStepFields) {
    if (!f.has(kKept)) continue;
    const auto type = point->FindFieldByName(f.name)->cpp_type();
    EXPECT_TRUE(type == FieldDescriptor::CPPTYPE_DOUBLE || type == FieldDescriptor::CPPTYPE_INT64 ||
                type == FieldDescriptor::CPPTYPE_BOOL)
        << f.name;  // what the worker's and the coordinator's mappings read and write
  }
  EXPECT_EQ(proto_fields(orchestrator::v1::EvalPoint::descriptor(), {}), kept_names(kEvalFields));
}

TEST(RecordFields, TheCoordinatorsFixedSeriesAreTheKeptStepFields) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("record_fields_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  {
    server::Database db((dir / "s.db").string());
    server::migrate(db);
    server::SeriesStore series(db);
    std::set<std::string> kept;
    for (const auto& f : kStepFields)
      if (trainer_core::is_kept_series(f)) {
        kept.insert(f.name);
        const auto id = series.find_metric(f.name);
        ASSERT_TRUE(id) << f.name << " has no fixed series";
        EXPECT_LE(*id, int64_t(server::Metric::kElapsedSeconds)) << f.name;
        EXPECT_TRUE(trainer_core::is_fixed_field(f.name)) << f.name;
      }
    EXPECT_EQ(series.find_metric("train_loss"), int64_t(server::Metric::kTrainLoss));
    EXPECT_EQ(kept.size(), size_t(server::Metric::kElapsedSeconds));  // one id per kept series
    EXPECT_FALSE(trainer_core::is_fixed_field("val_loss"));     // evaluations are rows of their own
    EXPECT_FALSE(trainer_core::is_fixed_field("loss_zscore"));  // not kept: a named metric may
  }
  std::filesystem::remove_all(dir);
}

// The proto points a worker sends become one series per kept field, the loss spike as the flag
// of its step's train_loss point.
TEST(RecordFields, AReportsStepsBecomeOneSeriesPerKeptFieldWithTheSpikeOnTheLoss) {
  const auto series = server::step_series(
      {step_point(1, 3.0, 1e-3, 0.5, 256, 0.1), step_point(2, 9.0, 1e-3, 7.5, 512, 0.2, true)});
  std::set<std::string> names;
  for (const server::NamedSeries& s : series) {
    names.insert(s.name);
    ASSERT_EQ(s.points.size(), 2u) << s.name;
    EXPECT_EQ(s.points[1].step, 2);
    EXPECT_EQ(s.points[1].flagged, s.name == "train_loss") << s.name;
    EXPECT_FALSE(s.points[0].flagged) << s.name;
  }
  EXPECT_EQ(names, (std::set<std::string>{"train_loss", "lr", "grad_norm", "tokens", "elapsed_s"}));
  for (const server::NamedSeries& s : series) {
    if (s.name == "tokens") {
      EXPECT_EQ(s.points[1].value, 512);
    }
  }
}

// Every field of both tables survives the run record's writer and parser under its name.
TEST(RecordFields, EveryFieldRoundTripsThroughTheRunRecord) {
  trainer_core::StepMetrics step;
  step.step = 7;
  step.train_loss = 2.5;
  step.lr = 1e-3;
  step.grad_norm = 0.75;
  step.loss_zscore = 1.5;
  step.grad_norm_zscore = -0.5;
  step.loss_spike = true;
  step.tokens_per_second = 1234.5;
  step.tokens = 1792;
  step.elapsed_s = 3.25;
  step.replayed = true;
  const nlohmann::json written = trainer_core::to_json(step);
  for (const auto& f : kStepFields) EXPECT_TRUE(written.contains(f.name)) << f.name;
  const auto back =
      std::get<trainer_core::StepMetrics>(*trainer_core::parse_run_record(written.dump()));
  for (const auto& f : kStepFields)
    std::visit([&](auto member) { EXPECT_EQ(back.*member, step.*member) << f.name; }, f.member);
}

// docs/run-records.md names every field of both records.
TEST(RecordFields, TheRunRecordDocumentNamesEveryField) {
  std::ifstream in(std::string(SOURCE_DIR) + "/docs/run-records.md");
  std::stringstream text;
  text << in.rdbuf();
  for (const auto& f : kStepFields)
    EXPECT_NE(text.str().find("`" + std::string(f.name) + "`"), std::string::npos) << f.name;
  for (const auto& f : kEvalFields)
    EXPECT_NE(text.str().find("`" + std::string(f.name) + "`"), std::string::npos) << f.name;
}

}  // namespace
