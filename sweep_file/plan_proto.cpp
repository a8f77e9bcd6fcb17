#include "sweep_file/plan_proto.h"

#include <google/protobuf/util/json_util.h>

namespace sweep_file {

namespace pb = orchestrator::v1;

pb::JobRole to_proto(JobRole role) {
  switch (role) {
    case JobRole::kGrid:
      return pb::ROLE_GRID;
    case JobRole::kTuning:
      return pb::ROLE_TUNING;
    case JobRole::kExtension:
      return pb::ROLE_EXTENSION;
    case JobRole::kConfirmation:
      return pb::ROLE_CONFIRMATION;
    case JobRole::kCompletion:
      return pb::ROLE_COMPLETION;
    case JobRole::kRewind:
      return pb::ROLE_REWIND;
  }
  return pb::JOB_ROLE_UNSPECIFIED;
}

void fill_fork(const ForkPlan& fork, int64_t parent_job_id, pb::ForkLineage* out) {
  out->set_parent_job_id(parent_job_id);
  out->set_parent_index(fork.parent_index);
  out->set_branch_step(fork.branch_step);
  out->set_branch_tokens(fork.branch_tokens);
  for (const auto& [path, value] : fork.changes.items()) {
    auto* change = out->add_changes();
    change->set_path(path);
    if (!google::protobuf::util::JsonStringToMessage(value.dump(), change->mutable_value()).ok())
      change->mutable_value()->set_null_value(google::protobuf::NULL_VALUE);
  }
}

nlohmann::json changes_from_proto(
    const google::protobuf::RepeatedPtrField<pb::ConfigChange>& changes) {
  nlohmann::json out = nlohmann::json::object();
  for (const pb::ConfigChange& change : changes) {
    std::string value;
    if (!google::protobuf::util::MessageToJsonString(change.value(), &value).ok()) value = "null";
    out[change.path()] = nlohmann::json::parse(value);
  }
  return out;
}

pb::ValidateSweepResponse plan_to_proto(const SweepPlan& plan) {
  pb::ValidateSweepResponse resp;
  for (const auto& p : plan.problems) {
    auto* out = resp.add_problems();
    out->set_path(p.path);
    out->set_message(p.message);
  }
  for (const ExpandedJob& e : plan.jobs) {
    auto* j = resp.add_jobs();
    j->set_label(e.label);
    j->set_seed(e.seed);
    j->set_config_hash(e.config_hash);
    j->set_max_steps(e.max_steps);
    j->set_state(pb::PENDING);
    j->set_role(to_proto(e.role));
    j->set_reason(e.reason);
    j->set_stage(e.stage);
    if (e.fork) fill_fork(*e.fork, 0, j->mutable_fork());
  }
  return resp;
}

}  // namespace sweep_file
