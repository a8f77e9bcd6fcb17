// A report's training steps (proto MetricPoint) as the series the coordinator stores them in:
// one per step field it keeps, named and read by the field table's names (trainer_core/train/
// record_fields.h), which the proto's fields share; a flag field marks the points of the series
// it names (loss_spike: the step's train_loss point). The fields the worker does not forward
// (z-scores, tokens per second, replayed) never reach the coordinator: docs/run-records.md.
#pragma once

#include <google/protobuf/repeated_ptr_field.h>

#include <vector>

#include "orchestrator.pb.h"
#include "server/storage/series_store.h"

namespace server {

std::vector<NamedSeries> step_series(
    const google::protobuf::RepeatedPtrField<orchestrator::v1::MetricPoint>& points);
// The same for points built by hand (tests, benches).
std::vector<NamedSeries> step_series(const std::vector<orchestrator::v1::MetricPoint>& points);

}  // namespace server
