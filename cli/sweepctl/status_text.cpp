#include "status_text.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <functional>
#include <map>
#include <sstream>
#include <vector>

namespace sweepctl {

int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

std::string lower_state(const std::string& proto_name) {
  std::string text = proto_name.substr(proto_name.find('_') + 1);
  for (char& c : text) c = char(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// A loss the job has not reported yet is NaN on the wire: shown as a dash, never as 0.
std::string loss_text(double loss) {
  if (!std::isfinite(loss)) return "      -";
  char text[32];
  std::snprintf(text, sizeof text, "%7.4f", loss);
  return text;
}

std::string bar(int64_t step, int64_t max_steps, int width = 20) {
  const double f = max_steps > 0 ? std::min(1.0, double(step) / double(max_steps)) : 0.0;
  std::string b(size_t(f * width), '#');
  b.resize(size_t(width), '.');
  return "[" + b + "]";
}

// The allocations beside the workers: what the provisioner asked the engine for, the engine's
// id and word, and the provisioner's last look at the queue.
void print_allocations(const pb::ListWorkersResponse& resp, int64_t now_ms) {
  const pb::ProvisionerInfo& p = resp.provisioner();
  if (p.engine() != "none")
    std::printf(
        "\nprovisioner: %s, %s workers: %d job(s) waiting, %d unplaced (%d allocation(s) "
        "needed, at most %d open), %d too large for one node; idle workers leave after "
        "%llds\n",
        p.engine().c_str(), p.backend().c_str(), p.waiting_jobs(), p.unplaced_jobs(),
        p.needed_allocations(), p.max_allocations(), p.unfit_jobs(), (long long)p.idle_timeout_s());
  if (p.has_setback()) std::printf("%s\n", setback_text(p.setback(), now_ms).c_str());
  if (resp.allocations().empty()) return;
  std::printf("\n%-22s %-10s %-12s %-9s %-16s %-10s %s\n", "allocation", "engine", "engine id",
              "state", "shape", "workers", "since / engine says / why asked");
  for (const auto& a : resp.allocations()) {
    const std::string shape =
        std::to_string(a.nodes()) + "x" + std::to_string(a.slots_per_node()) + " slot" +
        (a.gpus_per_node() ? " " + std::to_string(a.gpus_per_node()) + " GPU" : "");
    const int64_t since = a.ended_unix_ms() ? a.ended_unix_ms() : a.requested_unix_ms();
    std::printf("%-22s %-10s %-12s %-9s %-16s %d/%d active  %.0fs %s | %s | %s\n", a.name().c_str(),
                a.engine().c_str(), a.engine_id().empty() ? "-" : a.engine_id().c_str(),
                state_text(a.state()).c_str(), shape.c_str(), a.workers_active(),
                a.workers_registered(), (now_ms - since) / 1000.0,
                a.ended_unix_ms() ? "ago (ended)" : "ago (asked)",
                a.engine_reason().empty() ? "-" : a.engine_reason().c_str(), a.reason().c_str());
    // The engine's own words, indented under the row they explain.
    std::istringstream output(a.engine_output());
    for (std::string line; std::getline(output, line);) std::printf("    | %s\n", line.c_str());
  }
}

std::string clock_text(int64_t unix_ms) {
  const std::time_t t = std::time_t(unix_ms / 1000);
  char text[16];
  std::strftime(text, sizeof text, "%H:%M:%S", std::localtime(&t));
  return text;
}

}  // namespace

std::string setback_text(const pb::ProvisioningSetback& s, int64_t now_ms) {
  const int64_t wait_s = std::max<int64_t>(0, (s.retry_at_unix_ms() - now_ms + 999) / 1000);
  return "jobs wait: allocation " + s.allocation() + " failed at " +
         clock_text(s.failed_unix_ms()) + " (" + std::to_string(s.failures_in_a_row()) +
         " in a row before any worker registered): " + s.cause() +
         (wait_s > 0 ? "; next request at " + clock_text(s.retry_at_unix_ms()) + " (in " +
                           std::to_string(wait_s) + " s)"
                     : "; requests resumed at " + clock_text(s.retry_at_unix_ms())) +
         " (sweepctl workers shows each allocation's output)";
}

std::string for_terminal(std::string text, bool keep_line_breaks) {
  for (char& c : text)
    if ((static_cast<unsigned char>(c) < 0x20 && !(keep_line_breaks && (c == '\n' || c == '\t'))) ||
        c == 0x7f)
      c = '?';
  return text;
}

std::string event_line(const pb::Event& e) {
  // An event quotes trainers' and users' words: one line, no control character.
  return "event " + std::to_string(e.event_id()) + " at " + clock_text(e.at_unix_ms()) + ": " +
         for_terminal(e.text(), false);
}

std::string state_text(pb::SweepState s) { return lower_state(pb::SweepState_Name(s)); }
std::string state_text(pb::WorkerState s) { return lower_state(pb::WorkerState_Name(s)); }
std::string state_text(pb::AllocationState s) { return lower_state(pb::AllocationState_Name(s)); }

std::string counts_text(const pb::SweepInfo& s) {
  std::string out;
  // In the proto's order of states (its JobState enum), without the unspecified value.
  const auto* states = pb::JobState_descriptor();
  for (int i = 0; i < states->value_count(); ++i) {
    const std::string& state = states->value(i)->name();
    const auto it = s.jobs_by_state().find(state);
    if (it != s.jobs_by_state().end() && it->second > 0)
      out += (out.empty() ? "" : ", ") + std::to_string(it->second) + " " + state;
  }
  return out;
}

std::string owner_text(const pb::SweepInfo& s) { return s.owner().empty() ? "admin" : s.owner(); }

bool tuned(const google::protobuf::RepeatedPtrField<pb::JobInfo>& jobs) {
  return !jobs.empty() && jobs[0].role() == pb::ROLE_TUNING;
}

std::string fork_text(const pb::JobInfo& j, const pb::JobInfo* parent) {
  if (!j.has_fork()) return "";
  const pb::ForkLineage& f = j.fork();
  std::string text = "  [fork of job " + std::to_string(f.parent_job_id()) + " at step " +
                     std::to_string(f.branch_step()) + " (" + std::to_string(f.branch_tokens()) +
                     " tokens)";
  if (j.state() == pb::PENDING && parent && parent->state() != pb::SUCCEEDED &&
      parent->step() <= f.branch_step())
    text += ", waits for it to pass that step";
  for (int i = 0; i < f.changes_size(); ++i) {
    std::string value;
    (void)google::protobuf::util::MessageToJsonString(f.changes(i).value(), &value);
    text += (i == 0 ? ": " : ", ") + f.changes(i).path() + "=" + value;
  }
  return text + "]";
}

void print_lineage(const pb::GetSweepResponse& r) {
  std::map<int64_t, std::vector<const pb::JobInfo*>> forks_of;
  std::map<int64_t, const pb::JobInfo*> by_id;
  for (const auto& j : r.jobs()) {
    by_id[j.job_id()] = &j;
    if (j.has_fork()) forks_of[j.fork().parent_job_id()].push_back(&j);
  }
  if (forks_of.empty()) {
    std::printf("sweep %lld has no forks\n", (long long)r.sweep().sweep_id());
    return;
  }
  const std::function<void(const pb::JobInfo&, int)> tree = [&](const pb::JobInfo& j, int depth) {
    const std::string indent(size_t(2 * depth), ' ');
    if (depth == 0)
      std::printf("job %lld %s seed %lld: %s, %lld steps\n", (long long)j.job_id(),
                  j.label().c_str(), (long long)j.seed(), pb::JobState_Name(j.state()).c_str(),
                  (long long)j.max_steps());
    else
      std::printf("%s└ at step %lld: job %lld %s: %s, %lld/%lld steps%s\n", indent.c_str(),
                  (long long)j.fork().branch_step(), (long long)j.job_id(), j.label().c_str(),
                  pb::JobState_Name(j.state()).c_str(), (long long)j.step(),
                  (long long)j.max_steps(), fork_text(j, by_id[j.fork().parent_job_id()]).c_str());
    const auto it = forks_of.find(j.job_id());
    if (it == forks_of.end()) return;
    for (const pb::JobInfo* fork : it->second) tree(*fork, depth + 1);
  };
  for (const auto& [parent, forks] : forks_of)
    if (const auto it = by_id.find(parent); it != by_id.end() && !it->second->has_fork())
      tree(*it->second, 0);
}

void print_sweep(const pb::GetSweepResponse& r) {
  const auto& s = r.sweep();
  std::printf("sweep %lld %s by %s: %s (%d jobs: %s)%s\n", (long long)s.sweep_id(),
              s.name().c_str(), owner_text(s).c_str(), state_text(s.state()).c_str(),
              s.total_jobs(), counts_text(s).c_str(),
              !s.tuned()          ? ""
              : s.planning_open() ? "; tuning: the planner adds jobs as runs finish"
                                  : "; tuning: planning done");
  if (r.has_provisioning_setback())
    std::printf("  %s\n", setback_text(r.provisioning_setback(), now_unix_ms()).c_str());
  std::map<int64_t, const pb::JobInfo*> by_id;
  for (const auto& j : r.jobs()) by_id[j.job_id()] = &j;
  for (const auto& j : r.jobs()) {
    // A tuned sweep's jobs say what they are for: a tuning run (and why the planner added it)
    // or a confirmation seed at a row's chosen lr; a health rule's rewind says so too.
    const std::string role = j.role() == pb::ROLE_TUNING         ? "tune "
                             : j.role() == pb::ROLE_EXTENSION    ? "ext  "
                             : j.role() == pb::ROLE_CONFIRMATION ? "conf "
                             : j.role() == pb::ROLE_COMPLETION   ? "comp "
                             : j.role() == pb::ROLE_REWIND       ? "rewd "
                                                                 : "";
    const std::string why = j.reason().empty() ? "" : "  [" + j.reason() + "]";
    std::printf("  %5lld %-40s seed %-3lld %s%-9s %s %6lld/%-6lld loss %s val %s%s%s%s%s\n",
                (long long)j.job_id(), j.label().c_str(), (long long)j.seed(), role.c_str(),
                pb::JobState_Name(j.state()).c_str(), bar(j.step(), j.max_steps()).c_str(),
                (long long)j.step(), (long long)j.max_steps(),
                loss_text(j.last_train_loss()).c_str(), loss_text(j.last_val_loss()).c_str(),
                j.message().empty() ? "" : "  ", j.message().c_str(), why.c_str(),
                fork_text(j, j.has_fork() ? by_id[j.fork().parent_job_id()] : nullptr).c_str());
  }
}

void print_sweep_line(const pb::SweepInfo& s) {
  const std::time_t t = std::time_t(s.submitted_unix_ms() / 1000);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M", std::localtime(&t));
  std::printf("%5lld  %-28s %-12s %-10s %s  %d jobs: %s\n", (long long)s.sweep_id(),
              s.name().c_str(), owner_text(s).c_str(), state_text(s.state()).c_str(), when,
              s.total_jobs(), counts_text(s).c_str());
}

void print_workers(const pb::ListWorkersResponse& resp, int64_t now_ms) {
  for (const auto& w : resp.workers()) {
    std::string devices;
    for (const auto& d : w.devices())
      devices += (devices.empty() ? "" : ", ") + d.kind() + ": " + d.name();
    std::string jobs;
    for (auto id : w.job_ids()) jobs += (jobs.empty() ? "" : ",") + std::to_string(id);
    std::printf("%-28s %-8s %-4s %d slot(s)  heartbeat %5.1fs ago  jobs [%s]  %s%s\n",
                w.worker_id().c_str(), state_text(w.state()).c_str(), w.backend().c_str(),
                w.slots(), (now_ms - w.last_heartbeat_unix_ms()) / 1000.0, jobs.c_str(),
                devices.c_str(),
                w.allocation().empty() ? "" : ("  from " + w.allocation()).c_str());
  }
  print_allocations(resp, now_ms);
}

void print_audit_entry(const pb::AuditEntry& e) {
  const std::time_t t = std::time_t(e.at_unix_ms() / 1000);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  std::printf("%s  %-7s %-12s %-10s %-10s %-22s %s  [%s]\n", when, e.allowed() ? "ok" : "DENIED",
              e.user().empty() ? "-" : e.user().c_str(), e.role().empty() ? "-" : e.role().c_str(),
              e.action().c_str(), e.target().empty() ? "-" : e.target().c_str(), e.detail().c_str(),
              e.peer().c_str());
}

}  // namespace sweepctl
