// SweepResults in the wire contract (GetResultsResponse). The one conversion: sweepctl gets it
// over gRPC and the dashboard's /api/sweeps/N/results serves the same message as JSON (proto
// field names, int64 as strings, enums by name).
#pragma once

#include <string>

#include "analysis.h"
#include "orchestrator.pb.h"

namespace server {

orchestrator::v1::GetResultsResponse results_to_proto(const SweepResults& results);
std::string results_to_json(const SweepResults& results);

}  // namespace server
