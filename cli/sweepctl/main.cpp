// `sweepctl`: the researcher's client for the coordinator (gRPC only).
//   sweepctl [--coordinator ADDR] [--token T] [--tls-ca FILE] COMMAND ...
// Exit codes: 0 ok, 1 the coordinator refused or failed, 2 bad flags or an invalid sweep file,
// 3 the coordinator is unreachable. One function per subcommand (run_*); `status` and `workers`
// print `--format json` (the messages as the dashboard's /api/ serves them) for scripts and tests.
#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "client/channel.h"
#include "orchestrator.grpc.pb.h"
#include "proto/api_json.h"
#include "results_format.h"
#include "status_text.h"
#include "sweep_file/plan_proto.h"

namespace {

namespace pb = orchestrator::v1;
using orchestrator_client::Endpoint;
using namespace std::chrono_literals;
using namespace sweepctl;

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

// --since as milliseconds since the epoch: "2026-12-04T09:30:00" (UTC), "2026-12-04", or an age
// back from now ("30m", "12h", "7d"). Throws std::invalid_argument saying what it takes.
int64_t since_unix_ms(const std::string& text) {
  const int64_t now = now_unix_ms();
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

// Every flag and argument of every subcommand (each reads the ones it declared).
struct Options {
  std::string file, format = "table", output, worker_id, table = "curves";
  std::string audit_user, audit_since;
  int64_t sweep_id = 0, before = 0;
  int limit = 20, audit_limit = 1000;
  bool and_watch = false;
  int64_t job_id = 0, at_tokens = 0, at_step = 0;  // fork
  std::vector<std::string> set;                    // fork: path=value
  std::string label;                               // fork
  int attempt = 0;                                 // logs
  bool follow = false;                             // logs
};

// The coordinator as one subcommand talks to it. Lifetime: one per process, used from main's
// thread only.
struct Session {
  Endpoint endpoint;
  bool coordinator_given = false;  // --coordinator or SWEEP_COORDINATOR: validate asks it
  std::unique_ptr<pb::SweepService::Stub> stub;

  std::unique_ptr<grpc::ClientContext> context(std::chrono::seconds deadline = 30s) const {
    return orchestrator_client::make_context(endpoint, deadline);
  }
  static pb::SweepRef ref(int64_t sweep_id) {
    pb::SweepRef r;
    r.set_sweep_id(sweep_id);
    return r;
  }
};

// --format json: the message as the dashboard's /api/ serves it, one document.
bool print_json_if_asked(const Options& o, const google::protobuf::Message& m) {
  if (o.format != "json") return false;
  std::printf("%s\n", orchestrator_json::to_api_json(m).c_str());
  return true;
}

int watch(const Session& s, int64_t sweep_id) {
  auto ctx = s.context(std::chrono::hours(24 * 30));
  auto reader = s.stub->WatchSweep(ctx.get(), Session::ref(sweep_id));
  pb::GetSweepResponse update;
  const bool tty = isatty(STDOUT_FILENO);
  int printed_lines = 0;
  std::string last_counts, last_setback;
  int64_t last_event = 0;
  constexpr int kEventsShown = 5;  // a terminal's redrawn view keeps the newest few
  while (reader->Read(&update)) {
    if (tty) {  // redraw in place
      if (printed_lines) std::printf("\x1b[%dA\x1b[J", printed_lines);
      print_sweep(update);
      printed_lines = 1 + update.jobs_size() + (update.has_provisioning_setback() ? 1 : 0);
      for (int i = std::max(0, update.events_size() - kEventsShown); i < update.events_size();
           ++i) {
        std::printf("%s\n", event_line(update.events(i)).c_str());
        ++printed_lines;
      }
    } else {  // logs: one line per change of the counts, of why jobs wait, and per event
      for (const pb::Event& e : update.events())
        if (e.event_id() > last_event) {
          std::printf("sweep %lld: %s\n", (long long)sweep_id, event_line(e).c_str());
          last_event = e.event_id();
        }
      const std::string counts = counts_text(update.sweep());
      if (counts != last_counts) {
        std::printf("sweep %lld: %s\n", (long long)sweep_id, counts.c_str());
        last_counts = counts;
      }
      const auto& setback = update.provisioning_setback();
      const std::string why = setback.allocation() + setback.cause();
      if (update.has_provisioning_setback() && why != last_setback)
        std::printf("sweep %lld: %s\n", (long long)sweep_id,
                    setback_text(setback, now_unix_ms()).c_str());
      last_setback = update.has_provisioning_setback() ? why : "";
    }
    std::fflush(stdout);
  }
  check(reader->Finish(), s.endpoint);
  if (!tty) print_sweep(update);
  const pb::SweepState end = update.sweep().state();
  return end == pb::SWEEP_FINISHED || end == pb::SWEEP_CANCELLED ? 0 : 1;
}

int run_validate(Session& s, const Options& o) {
  pb::SubmitSweepRequest req;
  req.set_spec(read_file(o.file));
  req.set_source_name(o.file);
  pb::ValidateSweepResponse resp;
  if (s.coordinator_given) {
    check(s.stub->ValidateSweep(s.context().get(), req, &resp), s.endpoint);
  } else {
    // No coordinator named: validate here, with the coordinator's default job limit.
    resp = sweep_file::plan_to_proto(
        sweep_file::plan_sweep(req.spec(), o.file, sweep_file::kDefaultMaxJobsPerSweep));
  }
  if (resp.problems_size() > 0) {
    std::fprintf(stderr, "sweepctl: %s is invalid:\n", o.file.c_str());
    for (const auto& p : resp.problems())
      std::fprintf(stderr, "  %s: %s\n", p.path().c_str(), p.message().c_str());
    return 2;
  }
  std::printf("%s is valid: %d jobs%s%s\n", o.file.c_str(), resp.jobs_size(),
              s.coordinator_given ? "" : " (checked locally: no coordinator named)",
              tuned(resp.jobs()) ? "; a tuned sweep: these start it, its planner adds more" : "");
  for (int i = 0; i < resp.jobs_size(); ++i) {
    const pb::JobInfo& j = resp.jobs(i);
    const std::string fork = j.has_fork()
                                 ? "  fork of #" + std::to_string(j.fork().parent_index() + 1) +
                                       " at step " + std::to_string(j.fork().branch_step())
                                 : "";
    std::printf("  #%-3d %-48s seed %-4lld %6lld steps  config %s%s\n", i + 1, j.label().c_str(),
                (long long)j.seed(), (long long)j.max_steps(), j.config_hash().c_str(),
                fork.c_str());
  }
  return 0;
}

int run_submit(Session& s, const Options& o) {
  pb::SubmitSweepRequest req;
  req.set_spec(read_file(o.file));
  req.set_source_name(o.file);
  pb::SubmitSweepResponse resp;
  check(s.stub->SubmitSweep(s.context().get(), req, &resp), s.endpoint);
  std::printf("submitted sweep %lld: %d jobs%s\n", (long long)resp.sweep_id(), resp.jobs_size(),
              tuned(resp.jobs()) ? " to start; its tuning planner adds more as runs finish" : "");
  std::fflush(stdout);
  return o.and_watch ? watch(s, resp.sweep_id()) : 0;
}

int run_lineage(Session& s, const Options& o) {
  pb::GetSweepResponse resp;
  check(s.stub->GetSweep(s.context().get(), Session::ref(o.sweep_id), &resp), s.endpoint);
  print_lineage(resp);
  return 0;
}

// --set path=value: the value as JSON when it is JSON (1.5e-3, true, "x", [1, 2]), else as the
// text itself (wsd).
pb::ConfigChange config_change(const std::string& text) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    throw CallError("--set '" + text + "': expected path=value, e.g. optimizer.lr=1.5e-3", 2);
  pb::ConfigChange change;
  change.set_path(text.substr(0, eq));
  const std::string value = text.substr(eq + 1);
  const nlohmann::json parsed = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
  const std::string as_json = parsed.is_discarded() ? nlohmann::json(value).dump() : parsed.dump();
  if (!google::protobuf::util::JsonStringToMessage(as_json, change.mutable_value()).ok())
    throw CallError("--set '" + text + "': the value is not representable", 2);
  return change;
}

int run_fork(Session& s, const Options& o) {
  if (o.at_step <= 0 && o.at_tokens <= 0)
    throw CallError("fork: give the branch point, --at-tokens N or --at-step N", 2);
  pb::ForkJobRequest req;
  req.set_job_id(o.job_id);
  if (o.at_step > 0)
    req.set_at_step(o.at_step);
  else
    req.set_at_tokens(o.at_tokens);
  for (const std::string& text : o.set) *req.add_set() = config_change(text);
  req.set_label(o.label);
  pb::ForkJobResponse resp;
  check(s.stub->ForkJob(s.context().get(), req, &resp), s.endpoint);
  const pb::JobInfo& j = resp.job();
  std::printf("job %lld of sweep %lld: %s seed %lld%s\n", (long long)j.job_id(),
              (long long)j.sweep_id(), j.label().c_str(), (long long)j.seed(),
              fork_text(j).c_str());
  if (j.state() == pb::PENDING)
    std::printf("it starts once job %lld has passed step %lld and a worker is free\n",
                (long long)j.fork().parent_job_id(), (long long)j.fork().branch_step());
  else
    std::printf("it ended at once: %s\n", j.message().c_str());
  std::fflush(stdout);
  return o.and_watch ? watch(s, j.sweep_id()) : 0;
}

int run_list(Session& s, const Options& o) {
  pb::ListSweepsRequest req;
  req.set_limit(o.limit);
  req.set_before_id(o.before);
  pb::ListSweepsResponse resp;
  check(s.stub->ListSweeps(s.context().get(), req, &resp), s.endpoint);
  for (const auto& sweep : resp.sweeps()) print_sweep_line(sweep);
  return 0;
}

int run_status(Session& s, const Options& o) {
  pb::GetSweepResponse resp;
  check(s.stub->GetSweep(s.context().get(), Session::ref(o.sweep_id), &resp), s.endpoint);
  if (!print_json_if_asked(o, resp)) print_sweep(resp);
  return 0;
}

int run_watch(Session& s, const Options& o) { return watch(s, o.sweep_id); }

int run_cancel(Session& s, const Options& o) {
  pb::CancelSweepResponse resp;
  check(s.stub->CancelSweep(s.context().get(), Session::ref(o.sweep_id), &resp), s.endpoint);
  std::printf("cancelled %d job(s) of sweep %lld\n", resp.cancelled_jobs(), (long long)o.sweep_id);
  return 0;
}

int run_retry_failed(Session& s, const Options& o) {
  pb::RetryFailedResponse resp;
  check(s.stub->RetryFailed(s.context().get(), Session::ref(o.sweep_id), &resp), s.endpoint);
  std::printf("re-queued %d job(s) of sweep %lld\n", resp.requeued_jobs(), (long long)o.sweep_id);
  return 0;
}

int run_results(Session& s, const Options& o) {
  const auto format = parse_format(o.format);
  pb::GetResultsResponse resp;
  check(s.stub->GetResults(s.context().get(), Session::ref(o.sweep_id), &resp), s.endpoint);
  const std::string text = format_results(resp, format);
  if (o.output.empty()) {
    std::fputs(text.c_str(), stdout);
    return 0;
  }
  std::ofstream out(o.output);
  out << text;
  if (!out) throw CallError("cannot write " + o.output, 1);
  return 0;
}

int run_export(Session& s, const Options& o) {
  pb::ExportSweepRequest req;
  req.set_sweep_id(o.sweep_id);
  req.set_table(o.table == "summaries" ? pb::EXPORT_SUMMARIES : pb::EXPORT_CURVES);
  req.set_format(o.format == "jsonl" ? pb::EXPORT_JSONL : pb::EXPORT_CSV);
  // A long sweep streams for a while: no deadline beyond an hour.
  auto ctx = s.context(3600s);
  auto reader = s.stub->ExportSweep(ctx.get(), req);
  std::ofstream file;
  if (!o.output.empty()) file.open(o.output, std::ios::binary);
  std::ostream& out = o.output.empty() ? std::cout : file;
  pb::ExportChunk chunk;
  while (reader->Read(&chunk)) out.write(chunk.data().data(), std::streamsize(chunk.data().size()));
  check(reader->Finish(), s.endpoint);
  out.flush();
  if (!out) throw CallError("cannot write " + (o.output.empty() ? "stdout" : o.output), 1);
  return 0;
}

int run_workers(Session& s, const Options& o) {
  pb::ListWorkersResponse resp;
  check(s.stub->ListWorkers(s.context().get(), pb::ListWorkersRequest(), &resp), s.endpoint);
  if (!print_json_if_asked(o, resp)) print_workers(resp, now_unix_ms());
  return 0;
}

int run_whoami(Session& s, const Options&) {
  pb::WhoAmIResponse resp;
  check(s.stub->WhoAmI(s.context().get(), pb::WhoAmIRequest(), &resp), s.endpoint);
  std::printf("%s (%s)\n", resp.user().c_str(), resp.role().c_str());
  return 0;
}

int run_audit(Session& s, const Options& o) {
  pb::ListAuditRequest req;
  req.set_user(o.audit_user);
  req.set_since_unix_ms(o.audit_since.empty() ? 0 : since_unix_ms(o.audit_since));
  req.set_limit(o.audit_limit);
  pb::ListAuditResponse resp;
  check(s.stub->ListAudit(s.context().get(), req, &resp), s.endpoint);
  for (const auto& e : resp.entries()) print_audit_entry(e);
  return 0;
}

// A log's bytes for a terminal: newlines and tabs as written (for_terminal).
void print_log_bytes(const std::string& bytes) {
  const std::string out = for_terminal(bytes, true);
  std::fwrite(out.data(), 1, out.size(), stdout);
}

// `logs JOB [--attempt N] [--follow]`: the job's log (its stdout and stderr as its worker shipped
// them); --follow reads on every second until the attempt is over.
int run_logs(Session& s, const Options& o) {
  pb::GetJobLogRequest req;
  req.set_job_id(o.job_id);
  req.set_attempt(o.attempt);
  for (bool first = true;; first = false) {
    pb::JobLog log;
    check(s.stub->GetJobLog(s.context().get(), req, &log), s.endpoint);
    if (first && log.attempts_size() > 1 && o.attempt == 0) {
      std::string attempts;
      for (int n : log.attempts()) attempts += " " + std::to_string(n);
      std::fprintf(stderr, "job %lld: attempt %d; attempts with logs:%s (--attempt N)\n",
                   (long long)o.job_id, log.attempt(), attempts.c_str());
    }
    print_log_bytes(log.before_gap());
    if (log.omitted_bytes() > 0)
      std::printf(
          "\n[... %lld bytes not kept: the coordinator keeps each log's first 64 KiB and last 192 "
          "KiB ...]\n",
          (long long)log.omitted_bytes());
    print_log_bytes(log.after_gap());
    std::fflush(stdout);
    req.set_from_offset(log.next_offset());
    req.set_attempt(log.attempt());  // a follower stays on the attempt it began with
    if (!o.follow || log.finished()) return 0;
    std::this_thread::sleep_for(1s);
  }
}

int run_drain(Session& s, const Options& o) {
  pb::DrainWorkerRequest req;
  req.set_worker_id(o.worker_id);
  pb::DrainWorkerResponse resp;
  check(s.stub->DrainWorker(s.context().get(), req, &resp), s.endpoint);
  std::printf("worker %s is draining: it finishes its jobs and takes no new ones\n",
              o.worker_id.c_str());
  return 0;
}

using Handler = int (*)(Session&, const Options&);
struct Subcommand {
  CLI::App* app;
  Handler run;
};

// Declares every subcommand with its flags; each reads what it declared from `o`.
std::vector<Subcommand> define_subcommands(CLI::App& app, Options& o) {
  std::vector<Subcommand> out;
  const auto add = [&](const char* name, const char* help, Handler run) {
    out.push_back({app.add_subcommand(name, help), run});
    return out.back().app;
  };
  const auto sweep_arg = [&](CLI::App* sub) { sub->add_option("sweep", o.sweep_id)->required(); };
  const auto table_or_json = [&](CLI::App* sub) {
    sub->add_option("--format", o.format, "table | json (the message as /api/ serves it)")
        ->check(CLI::IsMember({"table", "json"}));
  };
  auto* submit = add("submit", "submit a sweep file (YAML or JSON)", run_submit);
  submit->add_option("file", o.file)->required();
  submit->add_flag("--watch", o.and_watch, "follow its progress until it finishes");
  add("validate", "check a sweep file and show its expansion", run_validate)
      ->add_option("file", o.file)
      ->required();
  auto* list = add("list", "list sweeps, newest first", run_list);
  list->add_option("--limit", o.limit);
  list->add_option("--before", o.before, "sweeps older than this id (paging)");
  auto* status = add("status", "a sweep's jobs and their state", run_status);
  sweep_arg(status);
  table_or_json(status);
  sweep_arg(add("lineage", "a sweep's forks as trees: each trunk, its branch points and forks",
                run_lineage));
  sweep_arg(add("watch", "follow a sweep until it finishes", run_watch));
  auto* fork =
      add("fork", "a new job of JOB's sweep from JOB's checkpoint at a step, with changed settings",
          run_fork);
  fork->add_option("job", o.job_id, "the job to fork (its id, as `status` shows)")->required();
  auto* at_tokens = fork->add_option("--at-tokens", o.at_tokens,
                                     "the branch point in tokens (a multiple of the job's batch)");
  auto* at_step = fork->add_option("--at-step", o.at_step, "the branch point in steps");
  at_tokens->excludes(at_step);
  fork->add_option("--set", o.set,
                   "path=value: a setting the fork changes (repeatable), e.g. "
                   "schedule.decay_fraction=0.2 or training.max_tokens=65536");
  fork->add_option("--label", o.label, "its row is <job's row>/<label> (default fork@<tokens>)");
  fork->add_flag("--watch", o.and_watch, "follow the sweep until it finishes");
  sweep_arg(add("cancel", "cancel a sweep's pending and running jobs", run_cancel));
  auto* results = add("results", "ablation table and R_L(B) of a sweep", run_results);
  sweep_arg(results);
  results->add_option("--format", o.format, "table | csv | md | latex");
  results->add_option("--output", o.output, "write to this file instead of stdout");
  sweep_arg(
      add("retry-failed", "re-queue the failed or missing cells of a sweep", run_retry_failed));
  auto* export_cmd =
      add("export", "a sweep's curves (every point of every metric) or summaries, for pandas",
          run_export);
  sweep_arg(export_cmd);
  export_cmd->add_option("--table", o.table, "curves | summaries")
      ->check(CLI::IsMember({"curves", "summaries"}));
  export_cmd->add_option("--format", o.format, "csv | jsonl (default csv)")
      ->check(CLI::IsMember({"table", "csv", "jsonl"}));
  export_cmd->add_option("--output", o.output, "write to this file instead of stdout");
  table_or_json(add("workers", "list workers and the provisioner's allocations", run_workers));
  add("whoami", "the user and role this token is", run_whoami);
  auto* audit = add("audit", "the audit trail: every change and refusal (admins)", run_audit);
  audit->add_option("--user", o.audit_user, "only this user's entries");
  audit->add_option("--since", o.audit_since,
                    "entries at or after this time: an ISO date-time (2026-12-04T09:30:00, UTC) "
                    "or an age such as 30m, 12h, 7d");
  audit->add_option("--limit", o.audit_limit, "the newest entries, at most")
      ->check(CLI::Range(1, 100000));
  auto* logs =
      add("logs", "a job's log: its stdout and stderr as its worker shipped them", run_logs);
  logs->add_option("job", o.job_id, "the job (its id, as `status` shows)")->required();
  logs->add_option("--attempt", o.attempt, "which attempt (default: the newest with a log)")
      ->check(CLI::Range(1, 1000000));
  logs->add_flag("--follow", o.follow, "keep reading as the job writes, until the attempt ends");
  add("drain", "stop giving new jobs to a worker", run_drain)
      ->add_option("worker", o.worker_id)
      ->required();
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sweepctl: submit and follow sweeps on a coordinator"};
  app.require_subcommand(1);
  Session session;
  const bool coordinator_in_env = std::getenv("SWEEP_COORDINATOR") != nullptr;
  session.endpoint.address =
      coordinator_in_env ? std::getenv("SWEEP_COORDINATOR") : "127.0.0.1:50051";
  session.endpoint.token = std::getenv("SWEEP_TOKEN") ? std::getenv("SWEEP_TOKEN") : "";
  auto* coordinator_flag = app.add_option("--coordinator", session.endpoint.address,
                                          "coordinator address host:port (env SWEEP_COORDINATOR)");
  app.add_option("--token", session.endpoint.token, "bearer token (env SWEEP_TOKEN)");
  app.add_option("--tls-ca", session.endpoint.tls_ca,
                 "CA certificate (PEM) to verify a TLS coordinator");
  app.fallthrough();
  Options options;
  const std::vector<Subcommand> subcommands = define_subcommands(app, options);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  session.coordinator_given = coordinator_in_env || coordinator_flag->count() > 0;
  try {
    session.stub = pb::SweepService::NewStub(orchestrator_client::make_channel(session.endpoint));
    for (const Subcommand& sub : subcommands)
      if (sub.app->parsed()) return sub.run(session, options);
  } catch (const CallError& e) {
    std::fprintf(stderr, "sweepctl: %s\n", e.what());
    return e.exit_code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sweepctl: %s\n", e.what());
    return 1;
  }
  return 0;
}
