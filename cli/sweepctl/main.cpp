// `sweepctl`: the researcher's client for the coordinator (gRPC only).
//   sweepctl [--coordinator ADDR] [--token T] [--tls-ca FILE] COMMAND ...
// Exit codes: 0 ok, 1 the coordinator refused or failed, 2 bad flags or an invalid sweep file,
// 3 the coordinator is unreachable.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "client_channel.h"
#include "orchestrator.grpc.pb.h"
#include "results_format.h"
#include "sweep_file/plan_proto.h"

namespace {

namespace pb = orchestrator::v1;
using orchestrator_client::Endpoint;
using namespace std::chrono_literals;

struct CallError : std::runtime_error {
  int exit_code;
  CallError(const std::string& what, int code) : std::runtime_error(what), exit_code(code) {}
};

void check(const grpc::Status& s, const Endpoint& e) {
  if (s.ok()) return;
  const std::string what = orchestrator_client::describe(s, e);
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE) throw CallError(what, 3);
  if (s.error_code() == grpc::StatusCode::INVALID_ARGUMENT) throw CallError(what, 2);
  throw CallError(what, 1);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw CallError("cannot read " + path, 2);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string state_name(pb::JobState s) { return pb::JobState_Name(s); }

// A sweep's or worker's state as users read it: the proto's name without its prefix, in lower
// case (SWEEP_FINISHED -> finished, WORKER_DRAINING -> draining).
std::string lower_state(const std::string& proto_name) {
  std::string text = proto_name.substr(proto_name.find('_') + 1);
  for (char& c : text) c = char(std::tolower(static_cast<unsigned char>(c)));
  return text;
}
std::string state_text(pb::SweepState s) { return lower_state(pb::SweepState_Name(s)); }
std::string state_text(pb::WorkerState s) { return lower_state(pb::WorkerState_Name(s)); }
std::string state_text(pb::AllocationState s) { return lower_state(pb::AllocationState_Name(s)); }

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
  }
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

// Whether a plan's jobs are an adaptive sweep's start runs.
bool tuned(const google::protobuf::RepeatedPtrField<pb::JobInfo>& jobs) {
  return !jobs.empty() && jobs[0].role() == pb::ROLE_TUNING;
}

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

// --since as milliseconds since the epoch: "2026-12-04T09:30:00" (UTC), "2026-12-04", or an age
// back from now ("30m", "12h", "7d"). Throws std::invalid_argument saying what it takes.
int64_t since_unix_ms(const std::string& text) {
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const std::string bad =
      "--since '" + text + "': expected 2026-12-04T09:30:00 (UTC), a date, or 30m/12h/7d";
  if (text.size() >= 2 && std::string("smhd").find(text.back()) != std::string::npos &&
      text.find_first_not_of("0123456789") == text.size() - 1) {
    const int64_t n = std::stoll(text.substr(0, text.size() - 1));
    const int64_t unit = text.back() == 's'   ? 1
                         : text.back() == 'm' ? 60
                         : text.back() == 'h' ? 3600
                                              : 86400;
    return now - n * unit * 1000;
  }
  std::tm tm{};
  std::istringstream in(text);
  in >> std::get_time(&tm, text.find('T') == std::string::npos ? "%Y-%m-%d" : "%Y-%m-%dT%H:%M:%S");
  if (in.fail() || in.peek() != EOF) throw std::invalid_argument(bad);
  return int64_t(timegm(&tm)) * 1000;
}

// Who submitted a sweep; sweeps from before users existed are the admin's.
std::string owner_text(const pb::SweepInfo& s) { return s.owner().empty() ? "admin" : s.owner(); }

void print_sweep(const pb::GetSweepResponse& r) {
  const auto& s = r.sweep();
  std::printf("sweep %lld %s by %s: %s (%d jobs: %s)%s\n", (long long)s.sweep_id(),
              s.name().c_str(), owner_text(s).c_str(), state_text(s.state()).c_str(),
              s.total_jobs(), counts_text(s).c_str(),
              !s.tuned()          ? ""
              : s.planning_open() ? "; tuning: the planner adds jobs as runs finish"
                                  : "; tuning: planning done");
  for (const auto& j : r.jobs()) {
    // A tuned sweep's jobs say what they are for: a tuning run (and why the planner added it)
    // or a confirmation seed at a row's chosen lr.
    const std::string role = j.role() == pb::ROLE_TUNING         ? "tune "
                             : j.role() == pb::ROLE_EXTENSION    ? "ext  "
                             : j.role() == pb::ROLE_CONFIRMATION ? "conf "
                                                                 : "";
    const std::string why = j.reason().empty() ? "" : "  [" + j.reason() + "]";
    std::printf("  %5lld %-40s seed %-3lld %s%-9s %s %6lld/%-6lld loss %s val %s%s%s%s\n",
                (long long)j.job_id(), j.label().c_str(), (long long)j.seed(), role.c_str(),
                state_name(j.state()).c_str(), bar(j.step(), j.max_steps()).c_str(),
                (long long)j.step(), (long long)j.max_steps(),
                loss_text(j.last_train_loss()).c_str(), loss_text(j.last_val_loss()).c_str(),
                j.message().empty() ? "" : "  ", j.message().c_str(), why.c_str());
  }
}

int watch(pb::SweepService::Stub& stub, const Endpoint& e, int64_t sweep_id) {
  auto ctx = orchestrator_client::make_context(e, std::chrono::hours(24 * 30));
  pb::SweepRef ref;
  ref.set_sweep_id(sweep_id);
  auto reader = stub.WatchSweep(ctx.get(), ref);
  pb::GetSweepResponse update;
  const bool tty = isatty(STDOUT_FILENO);
  int printed_lines = 0;
  std::string last_counts;
  while (reader->Read(&update)) {
    if (tty) {  // redraw in place
      if (printed_lines) std::printf("\x1b[%dA\x1b[J", printed_lines);
      print_sweep(update);
      printed_lines = 1 + update.jobs_size();
    } else {  // logs: one line per change of the counts
      const std::string counts = counts_text(update.sweep());
      if (counts != last_counts) {
        std::printf("sweep %lld: %s\n", (long long)sweep_id, counts.c_str());
        last_counts = counts;
      }
    }
    std::fflush(stdout);
  }
  check(reader->Finish(), e);
  if (!tty) print_sweep(update);
  const pb::SweepState end = update.sweep().state();
  return end == pb::SWEEP_FINISHED || end == pb::SWEEP_CANCELLED ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sweepctl: submit and follow sweeps on a coordinator"};
  app.require_subcommand(1);
  Endpoint endpoint;
  const bool coordinator_in_env = std::getenv("SWEEP_COORDINATOR") != nullptr;
  endpoint.address = coordinator_in_env ? std::getenv("SWEEP_COORDINATOR") : "127.0.0.1:50051";
  endpoint.token = std::getenv("SWEEP_TOKEN") ? std::getenv("SWEEP_TOKEN") : "";
  auto* coordinator_flag = app.add_option("--coordinator", endpoint.address,
                                          "coordinator address host:port (env SWEEP_COORDINATOR)");
  app.add_option("--token", endpoint.token, "bearer token (env SWEEP_TOKEN)");
  app.add_option("--tls-ca", endpoint.tls_ca, "CA certificate (PEM) to verify a TLS coordinator");
  app.fallthrough();

  std::string file, format = "table", output, worker_id;
  int64_t sweep_id = 0, before = 0;
  int limit = 20;
  bool and_watch = false;
  auto* submit = app.add_subcommand("submit", "submit a sweep file (YAML or JSON)");
  submit->add_option("file", file)->required();
  submit->add_flag("--watch", and_watch, "follow its progress until it finishes");
  auto* validate = app.add_subcommand("validate", "check a sweep file and show its expansion");
  validate->add_option("file", file)->required();
  auto* list = app.add_subcommand("list", "list sweeps, newest first");
  list->add_option("--limit", limit);
  list->add_option("--before", before, "sweeps older than this id (paging)");
  auto* status = app.add_subcommand("status", "a sweep's jobs and their state");
  status->add_option("sweep", sweep_id)->required();
  auto* watch_cmd = app.add_subcommand("watch", "follow a sweep until it finishes");
  watch_cmd->add_option("sweep", sweep_id)->required();
  auto* cancel = app.add_subcommand("cancel", "cancel a sweep's pending and running jobs");
  cancel->add_option("sweep", sweep_id)->required();
  auto* results = app.add_subcommand("results", "ablation table and R_L(B) of a sweep");
  results->add_option("sweep", sweep_id)->required();
  results->add_option("--format", format, "table | csv | md | latex");
  results->add_option("--output", output, "write to this file instead of stdout");
  auto* retry =
      app.add_subcommand("retry-failed", "re-queue the failed or missing cells of a sweep");
  retry->add_option("sweep", sweep_id)->required();
  std::string table = "curves";
  auto* export_cmd = app.add_subcommand(
      "export", "a sweep's curves (every point of every metric) or summaries, for pandas");
  export_cmd->add_option("sweep", sweep_id)->required();
  export_cmd->add_option("--table", table, "curves | summaries")
      ->check(CLI::IsMember({"curves", "summaries"}));
  export_cmd->add_option("--format", format, "csv | jsonl (default csv)")
      ->check(CLI::IsMember({"table", "csv", "jsonl"}));
  export_cmd->add_option("--output", output, "write to this file instead of stdout");
  auto* workers = app.add_subcommand("workers", "list workers");
  auto* whoami = app.add_subcommand("whoami", "the user and role this token is");
  auto* audit = app.add_subcommand("audit", "the audit trail: every change and refusal (admins)");
  std::string audit_user, audit_since;
  audit->add_option("--user", audit_user, "only this user's entries");
  audit->add_option("--since", audit_since,
                    "entries at or after this time: an ISO date-time (2026-12-04T09:30:00, UTC) "
                    "or an age such as 30m, 12h, 7d");
  int audit_limit = 1000;
  audit->add_option("--limit", audit_limit, "the newest entries, at most")
      ->check(CLI::Range(1, 100000));
  auto* drain = app.add_subcommand("drain", "stop giving new jobs to a worker");
  drain->add_option("worker", worker_id)->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  const bool coordinator_given = coordinator_in_env || coordinator_flag->count() > 0;

  try {
    auto channel = orchestrator_client::make_channel(endpoint);
    auto stub = pb::SweepService::NewStub(channel);
    auto ctx = orchestrator_client::make_context(endpoint, 30s);
    pb::SweepRef ref;
    ref.set_sweep_id(sweep_id);

    if (submit->parsed() || validate->parsed()) {
      pb::SubmitSweepRequest req;
      req.set_spec(read_file(file));
      req.set_source_name(file);
      if (validate->parsed()) {
        pb::ValidateSweepResponse resp;
        if (coordinator_given) {
          check(stub->ValidateSweep(ctx.get(), req, &resp), endpoint);
        } else {
          // No coordinator named: validate here, with the coordinator's default job limit.
          resp = sweep_file::plan_to_proto(
              sweep_file::plan_sweep(req.spec(), file, sweep_file::kDefaultMaxJobsPerSweep));
        }
        if (resp.problems_size() > 0) {
          std::fprintf(stderr, "sweepctl: %s is invalid:\n", file.c_str());
          for (const auto& p : resp.problems())
            std::fprintf(stderr, "  %s: %s\n", p.path().c_str(), p.message().c_str());
          return 2;
        }
        std::printf(
            "%s is valid: %d jobs%s%s\n", file.c_str(), resp.jobs_size(),
            coordinator_given ? "" : " (checked locally: no coordinator named)",
            tuned(resp.jobs()) ? "; a tuned sweep: these start it, its planner adds more" : "");
        for (const auto& j : resp.jobs())
          std::printf("  %-48s seed %-4lld %6lld steps  config %s\n", j.label().c_str(),
                      (long long)j.seed(), (long long)j.max_steps(), j.config_hash().c_str());
        return 0;
      }
      pb::SubmitSweepResponse resp;
      check(stub->SubmitSweep(ctx.get(), req, &resp), endpoint);
      std::printf(
          "submitted sweep %lld: %d jobs%s\n", (long long)resp.sweep_id(), resp.jobs_size(),
          tuned(resp.jobs()) ? " to start; its tuning planner adds more as runs finish" : "");
      std::fflush(stdout);
      return and_watch ? watch(*stub, endpoint, resp.sweep_id()) : 0;
    }
    if (list->parsed()) {
      pb::ListSweepsRequest req;
      req.set_limit(limit);
      req.set_before_id(before);
      pb::ListSweepsResponse resp;
      check(stub->ListSweeps(ctx.get(), req, &resp), endpoint);
      for (const auto& s : resp.sweeps()) {
        const std::time_t t = std::time_t(s.submitted_unix_ms() / 1000);
        char when[32];
        std::strftime(when, sizeof when, "%Y-%m-%d %H:%M", std::localtime(&t));
        std::printf("%5lld  %-28s %-12s %-10s %s  %d jobs: %s\n", (long long)s.sweep_id(),
                    s.name().c_str(), owner_text(s).c_str(), state_text(s.state()).c_str(), when,
                    s.total_jobs(), counts_text(s).c_str());
      }
      return 0;
    }
    if (status->parsed()) {
      pb::GetSweepResponse resp;
      check(stub->GetSweep(ctx.get(), ref, &resp), endpoint);
      print_sweep(resp);
      return 0;
    }
    if (watch_cmd->parsed()) return watch(*stub, endpoint, sweep_id);
    if (cancel->parsed()) {
      pb::CancelSweepResponse resp;
      check(stub->CancelSweep(ctx.get(), ref, &resp), endpoint);
      std::printf("cancelled %d job(s) of sweep %lld\n", resp.cancelled_jobs(),
                  (long long)sweep_id);
      return 0;
    }
    if (results->parsed()) {
      const auto fmt = sweepctl::parse_format(format);
      pb::GetResultsResponse resp;
      check(stub->GetResults(ctx.get(), ref, &resp), endpoint);
      const std::string text = sweepctl::format_results(resp, fmt);
      if (output.empty()) {
        std::fputs(text.c_str(), stdout);
      } else {
        std::ofstream out(output);
        out << text;
        if (!out) throw CallError("cannot write " + output, 1);
      }
      return 0;
    }
    if (export_cmd->parsed()) {
      pb::ExportSweepRequest req;
      req.set_sweep_id(sweep_id);
      req.set_table(table == "summaries" ? pb::EXPORT_SUMMARIES : pb::EXPORT_CURVES);
      req.set_format(format == "jsonl" ? pb::EXPORT_JSONL : pb::EXPORT_CSV);
      // A long sweep streams for a while: no deadline beyond an hour.
      auto export_ctx = orchestrator_client::make_context(endpoint, 3600s);
      auto reader = stub->ExportSweep(export_ctx.get(), req);
      std::ofstream file;
      if (!output.empty()) file.open(output, std::ios::binary);
      std::ostream& out = output.empty() ? std::cout : file;
      pb::ExportChunk chunk;
      while (reader->Read(&chunk))
        out.write(chunk.data().data(), std::streamsize(chunk.data().size()));
      check(reader->Finish(), endpoint);
      out.flush();
      if (!out)
        throw CallError("cannot write " + (output.empty() ? std::string("stdout") : output), 1);
      return 0;
    }
    if (retry->parsed()) {
      pb::RetryFailedResponse resp;
      check(stub->RetryFailed(ctx.get(), ref, &resp), endpoint);
      std::printf("re-queued %d job(s) of sweep %lld\n", resp.requeued_jobs(), (long long)sweep_id);
      return 0;
    }
    if (workers->parsed()) {
      pb::ListWorkersResponse resp;
      check(stub->ListWorkers(ctx.get(), pb::ListWorkersRequest(), &resp), endpoint);
      const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
      for (const auto& w : resp.workers()) {
        std::string devices;
        for (const auto& d : w.devices())
          devices += (devices.empty() ? "" : ", ") + d.kind() + ": " + d.name();
        std::string jobs;
        for (auto id : w.job_ids()) jobs += (jobs.empty() ? "" : ",") + std::to_string(id);
        std::printf("%-28s %-8s %-4s %d slot(s)  heartbeat %5.1fs ago  jobs [%s]  %s%s\n",
                    w.worker_id().c_str(), state_text(w.state()).c_str(), w.backend().c_str(),
                    w.slots(), (now - w.last_heartbeat_unix_ms()) / 1000.0, jobs.c_str(),
                    devices.c_str(),
                    w.allocation().empty() ? "" : ("  from " + w.allocation()).c_str());
      }
      print_allocations(resp, now);
      return 0;
    }
    if (whoami->parsed()) {
      pb::WhoAmIResponse resp;
      check(stub->WhoAmI(ctx.get(), pb::WhoAmIRequest(), &resp), endpoint);
      std::printf("%s (%s)\n", resp.user().c_str(), resp.role().c_str());
      return 0;
    }
    if (audit->parsed()) {
      pb::ListAuditRequest req;
      req.set_user(audit_user);
      req.set_since_unix_ms(audit_since.empty() ? 0 : since_unix_ms(audit_since));
      req.set_limit(audit_limit);
      pb::ListAuditResponse resp;
      check(stub->ListAudit(ctx.get(), req, &resp), endpoint);
      for (const auto& e : resp.entries()) {
        const std::time_t t = std::time_t(e.at_unix_ms() / 1000);
        char when[32];
        std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
        std::printf("%s  %-7s %-12s %-10s %-10s %-22s %s  [%s]\n", when,
                    e.allowed() ? "ok" : "DENIED", e.user().empty() ? "-" : e.user().c_str(),
                    e.role().empty() ? "-" : e.role().c_str(), e.action().c_str(),
                    e.target().empty() ? "-" : e.target().c_str(), e.detail().c_str(),
                    e.peer().c_str());
      }
      return 0;
    }
    if (drain->parsed()) {
      pb::DrainWorkerRequest req;
      req.set_worker_id(worker_id);
      pb::DrainWorkerResponse resp;
      check(stub->DrainWorker(ctx.get(), req, &resp), endpoint);
      std::printf("worker %s is draining: it finishes its jobs and takes no new ones\n",
                  worker_id.c_str());
      return 0;
    }
  } catch (const CallError& e) {
    std::fprintf(stderr, "sweepctl: %s\n", e.what());
    return e.exit_code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sweepctl: %s\n", e.what());
    return 1;
  }
  return 0;
}
