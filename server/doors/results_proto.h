// The coordinator core's answers in the wire contract, one conversion each:
//   - SweepResults -> GetResultsResponse: sweepctl gets it over gRPC and the dashboard's
//     /api/sweeps/N/results serves the same message as JSON (proto field names, int64 as
//     strings, enums by name);
//   - SweepPlan -> ValidateSweepResponse: from the coordinator, or from sweepctl validating a
//     file locally.
#pragma once

#include <string>

#include "orchestrator.pb.h"
#include "server/results/analysis.h"
#include "sweep_file/sweep_spec.h"

namespace server {

orchestrator::v1::GetResultsResponse results_to_proto(const SweepResults& results);
std::string results_to_json(const SweepResults& results);
orchestrator::v1::ValidateSweepResponse plan_to_proto(const SweepPlan& plan);

}  // namespace server
