// A sweep plan in the wire contract: SweepPlan -> ValidateSweepResponse (the problems with their
// paths, and the jobs the file expands to). One conversion for the coordinator's ValidateSweep
// and for `sweepctl validate` checking a file locally, so both print the same answer.
#pragma once

#include "orchestrator.pb.h"
#include "sweep_file/sweep_spec.h"

namespace sweep_file {

orchestrator::v1::ValidateSweepResponse plan_to_proto(const SweepPlan& plan);
// A job's role in the wire contract (JobInfo.role): the one mapping, for plans and stored jobs.
orchestrator::v1::JobRole to_proto(JobRole role);
// A fork's lineage in the wire contract (JobInfo.fork); parent_job_id 0 in a plan.
void fill_fork(const ForkPlan& fork, int64_t parent_job_id, orchestrator::v1::ForkLineage* out);
// Config changes from the wire ({dotted path: value}, as ForkSpec::set); a repeated path keeps
// its last value.
nlohmann::json changes_from_proto(
    const google::protobuf::RepeatedPtrField<orchestrator::v1::ConfigChange>& changes);

}  // namespace sweep_file
