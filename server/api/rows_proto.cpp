#include "server/api/rows_proto.h"

#include <google/protobuf/util/json_util.h>

#include <cctype>
#include <nlohmann/json.hpp>

#include "sweep_file/plan_proto.h"

namespace server {

namespace pb = orchestrator::v1;
using nlohmann::json;

namespace {

// The proto's value named <prefix><NAME>: each proto state enum spells the storage's state names
// in upper case behind its prefix (RUNNING, SWEEP_RUNNING, WORKER_ACTIVE); UNSPECIFIED (0) if
// a name ever drifts, which tests/unit/rows_proto_test.cpp catches.
template <typename ProtoEnum>
ProtoEnum by_name(const std::string& prefix, std::string_view name,
                  bool (*parse)(const std::string&, ProtoEnum*)) {
  std::string full = prefix;
  for (char c : name) full += char(std::toupper(static_cast<unsigned char>(c)));
  ProtoEnum out{};
  parse(full, &out);
  return out;
}

}  // namespace

pb::JobState to_proto(JobState state) {
  return by_name("", job_state_name(state), &pb::JobState_Parse);
}

std::optional<JobState> from_proto(pb::JobState state) {
  for (JobState s : kAllJobStates)
    if (pb::JobState_Name(state) == job_state_name(s)) return s;
  return std::nullopt;
}

pb::SweepState to_proto(SweepState state) {
  return by_name("SWEEP_", sweep_state_name(state), &pb::SweepState_Parse);
}

pb::WorkerState to_proto(WorkerState state) {
  return by_name("WORKER_", worker_state_name(state), &pb::WorkerState_Parse);
}

pb::AllocationState to_proto(AllocationState state) {
  return by_name("ALLOCATION_", allocation_state_name(state), &pb::AllocationState_Parse);
}

void fill_job(const JobRow& j, pb::JobInfo* out, bool with_config) {
  out->set_job_id(j.id);
  out->set_sweep_id(j.sweep_id);
  out->set_label(j.label);
  out->set_ablation(j.ablation);
  out->set_seed(j.seed);
  out->set_optimizer(j.optimizer);
  out->set_batch_tokens(j.batch_tokens);
  out->set_config_hash(j.config_hash);
  out->set_state(to_proto(j.state));
  out->set_finished(is_terminal(j.state));
  out->set_attempt(j.attempt);
  out->set_worker_id(j.worker_id);
  out->set_step(j.step);
  out->set_max_steps(j.max_steps);
  // NaN until the job has a value: the binary form keeps it, the /api/ JSON writes null.
  out->set_last_train_loss(j.last_train_loss);
  out->set_last_val_loss(j.last_val_loss);
  out->set_spikes(j.spikes);
  out->set_message(j.message);
  out->set_role(sweep_file::to_proto(j.role));
  out->set_reason(j.reason);
  out->set_stage(j.stage);
  if (j.fork) sweep_file::fill_fork(j.fork->plan, j.fork->parent_job_id, out->mutable_fork());
  if (j.reused) {
    out->mutable_reused_from()->set_job_id(j.reused->job_id);
    out->mutable_reused_from()->set_sweep_id(j.reused->sweep_id);
  }
  if (with_config) out->set_config_json(j.config);
}

void fill_settings(const ConfigColumns& columns, int64_t job_id, pb::JobInfo* out) {
  const auto& values = columns.values.at(job_id);
  auto& settings = *out->mutable_settings();
  for (size_t i = 0; i < columns.paths.size(); ++i) {
    google::protobuf::Value value;
    if (!google::protobuf::util::JsonStringToMessage(values[i].dump(), &value).ok())
      value.set_null_value(google::protobuf::NULL_VALUE);
    settings[columns.paths[i]] = std::move(value);
  }
}

void fill_sweep(const SweepRow& s, pb::SweepInfo* out) {
  out->set_sweep_id(s.id);
  out->set_name(s.name);
  out->set_owner(s.owner);
  out->set_state(to_proto(s.state()));
  out->set_submitted_unix_ms(s.submitted_ms);
  int finished = 0;
  for (const auto& [state, n] : s.jobs_by_state) {
    (*out->mutable_jobs_by_state())[job_state_name(state)] = n;
    finished += is_terminal(state) ? n : 0;
  }
  out->set_finished_jobs(finished);
  out->set_priority(s.priority);
  out->set_max_concurrency(s.max_concurrency);
  out->set_total_jobs(s.total_jobs);
  for (double t : s.targets) out->add_targets(t);
  out->set_baseline(s.baseline);
  out->set_tuned(s.tune.has_value());
  out->set_planning_open(s.planning_open);
  out->set_reuse(s.reuse);
}

void fill_setback(const ProvisioningSetback& setback, pb::ProvisioningSetback* out) {
  out->set_allocation(setback.allocation);
  out->set_cause(setback.cause);
  out->set_failures_in_a_row(setback.failures_in_a_row);
  out->set_failed_unix_ms(setback.failed_ms);
  out->set_retry_at_unix_ms(setback.retry_at_ms);
}

pb::EventKind to_proto(EventKind kind) {
  switch (kind) {
    case EventKind::kSweepFinished:
      return pb::EVENT_SWEEP_FINISHED;
    case EventKind::kJobsFailed:
      return pb::EVENT_JOBS_FAILED;
    case EventKind::kHealthRule:
      return pb::EVENT_HEALTH_RULE;
    case EventKind::kNoWorker:
      return pb::EVENT_NO_WORKER;
  }
  return pb::EVENT_KIND_UNSPECIFIED;
}

bool fill_job_log(Store& store, int64_t job_id, int attempt, int64_t from, pb::JobLog* out) {
  const std::optional<JobRow> job = store.sweeps.job(job_id);
  if (!job) return false;
  // A job that has written nothing yet (the built-in trainer writes nothing) has an empty log.
  const LogRead log = store.logs.read(job_id, attempt, from)
                          .value_or(LogRead{attempt ? attempt : job->attempt, "", 0, "", 0});
  out->set_job_id(job_id);
  out->set_attempt(log.attempt);
  out->set_before_gap(log.before_gap);
  out->set_omitted_bytes(log.omitted_bytes);
  out->set_after_gap(log.after_gap);
  out->set_next_offset(log.total_bytes);
  // An earlier attempt is over once a later one exists; the newest, when its job is final.
  out->set_finished(job->attempt != log.attempt || is_terminal(job->state));
  for (int a : store.logs.attempts(job_id)) out->add_attempts(a);
  return true;
}

void fill_event(const EventRow& e, pb::Event* out) {
  out->set_event_id(e.id);
  out->set_at_unix_ms(e.at_ms);
  out->set_kind(to_proto(e.kind));
  out->set_sweep_id(e.sweep_id.value_or(0));
  out->set_text(e.text);
}

void fill_sweep_detail(const SweepRow& sweep, const std::vector<JobRow>& jobs,
                       const std::vector<EventRow>& events, const ConfigColumns* columns,
                       const Provisioner* provisioner, pb::GetSweepResponse* out) {
  fill_sweep(sweep, out->mutable_sweep());
  for (const EventRow& e : events) fill_event(e, out->add_events());
  if (columns)
    for (const auto& path : columns->paths) out->add_config_columns(path);
  bool waits_on_provisioner = false;
  for (const JobRow& j : jobs) {
    auto* job = out->add_jobs();
    fill_job(j, job);
    if (columns) fill_settings(*columns, j.id, job);
    waits_on_provisioner |= provisioner && j.state == JobState::kPending &&
                            j.backend == provisioner->settings().limits.shape.backend;
  }
  if (!waits_on_provisioner) return;
  if (const auto setback = provisioner->setback())
    fill_setback(*setback, out->mutable_provisioning_setback());
}

std::string devices_json(const google::protobuf::RepeatedPtrField<pb::Device>& devices) {
  json out = json::array();
  for (const auto& d : devices)
    out.push_back({{"kind", d.kind()}, {"name", d.name()}, {"memory_bytes", d.memory_bytes()}});
  return out.dump();
}

void fill_worker(const WorkerRow& w, pb::WorkerInfo* out) {
  out->set_worker_id(w.id);
  out->set_hostname(w.hostname);
  out->set_backend(w.backend);
  out->set_gpus(w.gpus);
  out->set_slots(w.slots);
  out->set_state(to_proto(w.state));
  out->set_last_heartbeat_unix_ms(w.last_heartbeat_ms);
  out->set_allocation(w.allocation);
  for (int64_t id : w.job_ids) out->add_job_ids(id);
  const json devices = json::parse(w.devices_json, nullptr, false);
  for (const auto& d : devices.is_array() ? devices : json::array()) {
    auto* dev = out->add_devices();
    dev->set_kind(d.value("kind", ""));
    dev->set_name(d.value("name", ""));
    dev->set_memory_bytes(d.value("memory_bytes", int64_t(0)));
  }
}

void fill_allocation(const AllocationRow& a, pb::AllocationInfo* out) {
  out->set_id(a.id);
  out->set_engine(a.engine);
  out->set_name(a.name);
  out->set_engine_id(a.engine_id);
  out->set_state(to_proto(a.state));
  out->set_backend(a.backend);
  out->set_nodes(a.nodes);
  out->set_slots_per_node(a.slots_per_node);
  out->set_gpus_per_node(a.gpus_per_node);
  out->set_reason(a.reason);
  out->set_engine_reason(a.engine_reason);
  out->set_withdrawn(a.cancel_requested);
  out->set_requested_unix_ms(a.requested_ms);
  out->set_updated_unix_ms(a.updated_ms);
  out->set_ended_unix_ms(a.ended_ms);
  out->set_workers_registered(a.workers_registered);
  out->set_workers_active(a.workers_active);
  out->set_engine_output(a.engine_output);
}

void fill_workers_page(WorkerStore& workers, AllocationStore& allocations,
                       const Provisioner* provisioner, pb::ListWorkersResponse* out) {
  for (const WorkerRow& w : workers.workers()) fill_worker(w, out->add_workers());
  int ended = 0;
  for (const AllocationRow& a : allocations.allocations(/*open_only=*/true))
    fill_allocation(a, out->add_allocations());
  for (const AllocationRow& a : allocations.allocations(/*open_only=*/false, 200))
    if (!is_open(a.state) && ended++ < 50) fill_allocation(a, out->add_allocations());
  auto* p = out->mutable_provisioner();
  if (!provisioner) {
    p->set_engine(engine_kind_name(EngineKind::kNone));
    return;
  }
  const ProvisionerSettings& s = provisioner->settings();
  const DemandDecision d = provisioner->last_decision();
  p->set_engine(engine_kind_name(s.engine));
  p->set_backend(s.limits.shape.backend);
  p->set_waiting_jobs(d.waiting);
  p->set_unplaced_jobs(d.unplaced);
  p->set_unfit_jobs(d.unfit);
  p->set_needed_allocations(d.needed);
  p->set_max_allocations(s.limits.max_allocations);
  p->set_idle_timeout_s(s.idle_timeout_s);
  if (const auto setback = provisioner->setback()) fill_setback(*setback, p->mutable_setback());
}

void fill_audit(AuditStore& audit, const pb::ListAuditRequest& req, pb::ListAuditResponse* out) {
  AuditQuery query;
  query.user = req.user();
  query.since_ms = req.since_unix_ms();
  query.limit = req.limit() > 0 ? std::min(req.limit(), 100000) : 1000;
  for (const AuditRow& r : audit.query(query)) {
    auto* e = out->add_entries();
    e->set_id(r.id);
    e->set_at_unix_ms(r.at_ms);
    e->set_user(r.user);
    e->set_role(r.role);
    e->set_action(r.action);
    e->set_target(r.target);
    e->set_peer(r.peer);
    e->set_allowed(r.allowed);
    e->set_detail(r.detail);
  }
}

void fill_curve(const std::vector<CurveBucket>& buckets, pb::Curve* out) {
  for (const auto& b : buckets) {
    out->add_step(b.last_step);
    out->add_min(b.min_value);
    out->add_max(b.max_value);
    out->add_mean(b.mean_value);
    if (b.flagged) out->add_spike_steps(b.last_step);
  }
}

void fill_evals(const std::vector<EvalRow>& evals, pb::EvalCurve* out) {
  for (const auto& e : evals) {
    out->add_step(e.step);
    out->add_val_loss(e.val_loss);
  }
}

bool fill_struct(const std::string& json_text, google::protobuf::Struct* out) {
  out->Clear();
  if (google::protobuf::util::JsonStringToMessage(json_text, out).ok()) return true;
  out->Clear();
  return false;
}

}  // namespace server
