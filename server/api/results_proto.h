// The coordinator's results in the wire contract: SweepResults -> GetResultsResponse. sweepctl
// gets it over gRPC and the dashboard's /api/sweeps/N/results serves the same message as JSON
// (proto/api_json.h).
#pragma once

#include <string>

#include "orchestrator.pb.h"
#include "server/results/analysis.h"

namespace server {

orchestrator::v1::GetResultsResponse results_to_proto(const SweepResults& results);

}  // namespace server
