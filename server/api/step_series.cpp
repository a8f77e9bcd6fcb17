#include "server/api/step_series.h"

#include <map>
#include <string>

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
}  // namespace

std::vector<NamedSeries> step_series(
    const google::protobuf::RepeatedPtrField<orchestrator::v1::MetricPoint>& points) {
  const auto* descriptor = orchestrator::v1::MetricPoint::descriptor();
  std::vector<NamedSeries> out;
  std::map<std::string, size_t> series_of;  // name -> index in out
  for (const auto& f : trainer_core::kStepFields)
    if (trainer_core::is_kept_series(f)) {
      series_of[f.name] = out.size();
      out.push_back({f.name, {}});
      out.back().points.reserve(size_t(points.size()));
    }
  for (const auto& p : points)
    for (const auto& f : trainer_core::kStepFields)
      if (trainer_core::is_kept_series(f))
        out[series_of[f.name]].points.push_back(
            {p.step(), read_number(p, descriptor->FindFieldByName(f.name)), false});
  // Flags mark the point of their step in the series they name.
  for (const auto& f : trainer_core::kStepFields)
    if (f.has(trainer_core::kKept) && f.flags_series) {
      const FieldDescriptor* flag = descriptor->FindFieldByName(f.name);
      std::vector<SeriesPoint>& marked = out[series_of.at(f.flags_series)].points;
      for (int i = 0; i < points.size(); ++i)
        marked[size_t(i)].flagged = read_number(points[i], flag) != 0;
    }
  return out;
}

std::vector<NamedSeries> step_series(const std::vector<orchestrator::v1::MetricPoint>& points) {
  return step_series(google::protobuf::RepeatedPtrField<orchestrator::v1::MetricPoint>(
      points.begin(), points.end()));
}

}  // namespace server
