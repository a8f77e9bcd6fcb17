#include "server/api/step_series.h"

#include <string_view>

#include "trainer_core/train/record_fields.h"

namespace server {

namespace {
using google::protobuf::FieldDescriptor;
using google::protobuf::Reflection;

double read_number(const orchestrator::v1::MetricPoint& p, const FieldDescriptor* field) {
  const Reflection* r = p.GetReflection();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return r->GetDouble(p, field);
    case FieldDescriptor::CPPTYPE_INT64:
      return double(r->GetInt64(p, field));
    default:  // CPPTYPE_BOOL (record_fields_test allows no other type)
      return r->GetBool(p, field) ? 1.0 : 0.0;
  }
}

// The proto field of each series the coordinator keeps, and of each flag with the series it marks,
// looked up by name once: the table and the proto are fixed when the binary is built.
struct SeriesField {
  const char* name;
  const FieldDescriptor* field;
};
struct FlagField {
  const FieldDescriptor* field;
  size_t series;  // index into Layout::series
};
struct Layout {
  std::vector<SeriesField> series;
  std::vector<FlagField> flags;
};

const Layout& layout() {
  static const Layout fields = [] {
    const auto* descriptor = orchestrator::v1::MetricPoint::descriptor();
    Layout out;
    for (const auto& f : trainer_core::kStepFields)
      if (trainer_core::is_kept_series(f))
        out.series.push_back({f.name, descriptor->FindFieldByName(f.name)});
    for (const auto& f : trainer_core::kStepFields)
      if (f.has(trainer_core::kKept) && f.flags_series)
        for (size_t i = 0; i < out.series.size(); ++i)
          if (std::string_view(out.series[i].name) == f.flags_series)
            out.flags.push_back({descriptor->FindFieldByName(f.name), i});
    return out;
  }();
  return fields;
}
}  // namespace

std::vector<NamedSeries> step_series(
    const google::protobuf::RepeatedPtrField<orchestrator::v1::MetricPoint>& points) {
  const Layout& fields = layout();
  std::vector<NamedSeries> out;
  for (const SeriesField& f : fields.series) {
    out.push_back({f.name, {}});
    out.back().points.reserve(size_t(points.size()));
  }
  for (const auto& p : points) {
    for (size_t i = 0; i < fields.series.size(); ++i)
      out[i].points.push_back({p.step(), read_number(p, fields.series[i].field), false});
    // A flag marks its step's point in the series it names.
    for (const FlagField& flag : fields.flags)
      out[flag.series].points.back().flagged = read_number(p, flag.field) != 0;
  }
  return out;
}

std::vector<NamedSeries> step_series(const std::vector<orchestrator::v1::MetricPoint>& points) {
  return step_series(google::protobuf::RepeatedPtrField<orchestrator::v1::MetricPoint>(
      points.begin(), points.end()));
}

}  // namespace server
