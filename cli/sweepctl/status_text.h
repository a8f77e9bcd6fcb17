// How sweepctl prints a sweep, its jobs, the workers and the allocations for people (the table
// form); `--format json` prints the messages themselves (proto/api_json.h). Pure formatting to
// stdout, no calls to the coordinator.
#pragma once

#include <cstdint>
#include <string>

#include "orchestrator.pb.h"

namespace sweepctl {

namespace pb = orchestrator::v1;

// A state as users read it: the proto's name without its prefix, lower case
// (SWEEP_FINISHED -> finished, WORKER_DRAINING -> draining).
std::string state_text(pb::SweepState s);
std::string state_text(pb::WorkerState s);
std::string state_text(pb::AllocationState s);
// "3 SUCCEEDED, 1 RUNNING": the job counts in the proto's order of states.
std::string counts_text(const pb::SweepInfo& s);
// Who submitted a sweep; sweeps from before users existed are the admin's.
std::string owner_text(const pb::SweepInfo& s);
// Whether a plan's jobs are an adaptive sweep's start runs.
bool tuned(const google::protobuf::RepeatedPtrField<pb::JobInfo>& jobs);

int64_t now_unix_ms();  // wall-clock milliseconds since the epoch
// One line: why jobs wait on a provisioner held back by failed allocations, and when it asks again.
std::string setback_text(const pb::ProvisioningSetback& s, int64_t now_ms);
// Text from trainers and users made safe to print: control characters (escape sequences among
// them) as '?', so nobody else's words can drive the reader's terminal; with keep_line_breaks,
// newlines and tabs stay (a log).
std::string for_terminal(std::string text, bool keep_line_breaks);
// "event 12 at 14:03:22: sweep 3 (lr) finished: 12 SUCCEEDED" (sweepctl watch).
std::string event_line(const pb::Event& e);

// A fork's lineage as its job line ends: "  [fork of job 12 at step 32 (16384 tokens):
// training.max_tokens=20480, ...]", and while it waits for its parent (given, when known) to
// pass the branch step, that; "" for a job that is no fork.
std::string fork_text(const pb::JobInfo& j, const pb::JobInfo* parent = nullptr);

// The sweep's forks as trees (`sweepctl lineage`): every job that has forks, then each fork
// indented under it at its branch step, forks of forks deeper; "no forks" when it has none.
void print_lineage(const pb::GetSweepResponse& r);
void print_sweep(const pb::GetSweepResponse& r);  // with the setback line when it has one
void print_sweep_line(const pb::SweepInfo& s);    // one line of `list`
void print_workers(const pb::ListWorkersResponse& resp, int64_t now_ms);
void print_audit_entry(const pb::AuditEntry& e);

}  // namespace sweepctl
