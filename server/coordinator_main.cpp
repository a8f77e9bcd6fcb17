// `coordinator`: the sweep service. One process: gRPC for sweepctl and workers, HTTP for
// metrics and the dashboard, all state in one SQLite file.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <fstream>
#include <iostream>
#include <thread>

#include "client/channel.h"
#include "server/access/listen_policy.h"
#include "server/access/users.h"
#include "server/api/http_server.h"
#include "server/api/sweep_service.h"
#include "server/api/worker_service.h"
#include "server/events/event_watch.h"
#include "server/events/notify_flags.h"
#include "server/provisioning/flags.h"
#include "server/provisioning/preflight.h"
#include "server/storage/clock.h"

namespace {
std::atomic<bool> g_stop{false}, g_reload_users{false};
void on_signal(int) { g_stop = true; }
void on_hangup(int) { g_reload_users = true; }

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

constexpr int kMaxStreamsPerConnection = 64;

// Everything the command line sets (the subcommands apart).
struct CoordinatorFlags {
  std::string listen = "127.0.0.1:50051", http = "127.0.0.1:8080", db_path = "sweeps.db";
  std::string token = std::getenv("SWEEP_TOKEN") ? std::getenv("SWEEP_TOKEN") : "";
  std::string token_file, users_file, tls_cert, tls_key, ports_file, health;
  server::CoordinatorOptions options;
  int64_t max_jobs = int64_t(sweep_file::kDefaultMaxJobsPerSweep);
  int64_t max_db_mib = 0;
  bool check_only = false;
  bool insecure_plaintext = false;
  int auth_failures_per_minute = 120;
  int max_calls_per_address = 256;
  unsigned http_connections_per_address = http_door::Limits{}.max_connections_per_peer;
  std::string audit_retention;  // "400d"; empty: the trail is kept whole
  int64_t audit_retention_ms = 0;
  server::ProvisionerFlags provisioner;
  server::NotifyFlags notify;
  server::NotifySettings notify_settings;  // from `notify`, checked by finish_flags
};

// The option groups, in the order --help lists them.

void add_address_flags(CLI::App& app, CoordinatorFlags& f) {
  app.add_option("--listen", f.listen, "gRPC address host:port (port 0 picks one)");
  app.add_option("--http", f.http,
                 "HTTP address host:port for /metrics and the dashboard (port 0 picks one); "
                 "HTTPS with --tls-cert");
  app.add_option("--health", f.health,
                 "host:port of a listener of its own for liveness and readiness probes "
                 "(/healthz, /readyz): no client of the dashboard's door can fail them");
  app.add_option("--db", f.db_path, "SQLite database file (created and migrated on start)");
}

void add_access_flags(CLI::App& app, CoordinatorFlags& f) {
  app.add_option("--token", f.token,
                 "bearer token required from workers and sweepctl (env SWEEP_TOKEN)");
  app.add_option("--token-file", f.token_file, "read the token from this file");
  app.add_option(
      "--users-file", f.users_file,
      "users, roles and their tokens' SHA-256 (YAML; docs/deploy.md); reloaded on SIGHUP");
  app.add_option("--auth-failures-per-minute", f.auth_failures_per_minute,
                 "calls without a valid token one address may make in a minute before it is "
                 "rate-limited (429 / RESOURCE_EXHAUSTED; default 120)")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--max-calls-per-address", f.max_calls_per_address,
                 "gRPC calls one address may have in progress at once, watches included; more "
                 "are refused with RESOURCE_EXHAUSTED (default 256)")
      ->check(CLI::Range(1, 100000));
  app.add_option("--http-connections-per-address", f.http_connections_per_address,
                 "HTTP connections one address may hold open (default 32; a browser opens about "
                 "6; raise it for many users behind one NAT address)")
      ->check(CLI::Range(1u, 1000u));
  app.add_flag("--insecure-plaintext", f.insecure_plaintext,
               "allow listening beyond loopback without TLS: tokens cross the network in clear "
               "(warned at every start, sweep_insecure_plaintext on /metrics)");
  app.add_option("--audit-retention", f.audit_retention,
                 "prune audit rows older than this many days, e.g. 400d (at start, then hourly; "
                 "each pruning is itself audited). Default: keep every row");
  app.add_option("--tls-cert", f.tls_cert,
                 "PEM certificate chain: serve gRPC and the HTTP door (HTTPS, with HSTS) over TLS");
  app.add_option("--tls-key", f.tls_key, "PEM private key for --tls-cert");
}

void add_scheduling_flags(CLI::App& app, CoordinatorFlags& f) {
  server::CoordinatorOptions& o = f.options;
  app.add_option("--checkpoint-root", o.checkpoint_root,
                 "checkpoint directory shared by all workers");
  app.add_option("--lease-ms", o.lease_ms, "a worker silent this long loses its jobs")
      ->check(CLI::Range(500, 3600000));
  app.add_option("--heartbeat-ms", o.heartbeat_interval_ms, "heartbeat interval told to workers")
      ->check(CLI::Range(100, 600000));
  app.add_option("--max-jobs", f.max_jobs, "largest sweep expansion accepted")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--max-running-per-user", o.max_running_per_user,
                 "jobs one user may have running at once (0: no cap)")
      ->check(CLI::Range(0, 1000000));
}

void add_operation_flags(CLI::App& app, CoordinatorFlags& f) {
  app.add_option("--ports-file", f.ports_file,
                 "write the bound ports as JSON here (for scripts and tests)");
  app.add_option(
         "--max-db-mib", f.max_db_mib,
         "cap the database file at this size; writes past it answer RESOURCE_EXHAUSTED (0: no cap)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 40));
  app.add_flag("--check", f.check_only, "validate the flags and exit");
  app.add_option("--crash-after-completions", f.options.crash_after_completions,
                 "tests only: exit like kill -9 after storing the N-th job completion")
      ->group("");  // hidden from --help
}

// `coordinator hash-token`: a token read on stdin, as --users-file stores it.
int print_token_hash() {
  std::string line;
  std::getline(std::cin, line);
  std::cout << server::token_sha256(server::trim(line)) << "\n";
  return 0;
}

// The token file read, and the flags that only make sense together checked. Throws
// std::invalid_argument (or std::runtime_error: an unreadable file) with what is wrong.
void finish_flags(CoordinatorFlags& f) {
  if (!f.token_file.empty()) f.token = server::trim(read_file(f.token_file));
  f.options.max_jobs_per_sweep = size_t(f.max_jobs);
  f.notify_settings = server::finish_notify_flags(f.notify);
  f.options.notify_allow_origins = f.notify_settings.allow_origins;
  if (f.tls_cert.empty() != f.tls_key.empty())
    throw std::invalid_argument("--tls-cert and --tls-key go together");
  if (!f.audit_retention.empty()) {
    const std::string& r = f.audit_retention;
    const std::string digits = r.substr(0, r.size() - 1);
    if (r.back() != 'd' || digits.empty() || digits.size() > 5 ||
        digits.find_first_not_of("0123456789") != std::string::npos || std::stoi(digits) < 1)
      throw std::invalid_argument(
          "--audit-retention: expected a number of days such as 400d "
          "(1d to 99999d), got '" +
          r + "'");
    f.audit_retention_ms = int64_t(std::stoi(digits)) * 86400000;
  }
}

// --audit-retention: the rows older than it go, in batches (audit.h); a failure is logged and
// retried at the next hour.
void prune_audit(server::Store& store, const CoordinatorFlags& f) {
  if (f.audit_retention_ms == 0) return store.audit.clear_retention();
  try {
    const int64_t removed = store.audit.prune(server::now_ms(), f.audit_retention_ms,
                                              "--audit-retention " + f.audit_retention);
    if (removed > 0)
      spdlog::info("coordinator: pruned {} audit row(s) older than {}", removed, f.audit_retention);
  } catch (const std::exception& e) {
    spdlog::error("coordinator: audit pruning failed, retried in an hour: {}", e.what());
  }
}

// Both addresses checked against listen_policy.h: beyond loopback only when callers need a
// token, and then never in clear unless --insecure-plaintext says so (a warning every start).
void check_listen_addresses(const CoordinatorFlags& f, const server::UserDirectory& users) {
  const server::Door grpc{"--listen", !f.tls_cert.empty(), "give --tls-cert and --tls-key"};
  const server::Door http{"--http", !f.tls_cert.empty(), "give --tls-cert and --tls-key"};
  for (const auto& [addr, door] : {std::pair{f.listen, grpc}, std::pair{f.http, http}}) {
    if (auto problem = server::listen_problem(addr, door, !users.open(), f.insecure_plaintext);
        !problem.empty())
      throw std::invalid_argument(problem);
    if (f.insecure_plaintext && !door.encrypted &&
        !server::is_loopback_host(server::split_host_port(addr).first))
      spdlog::warn(
          "coordinator: --insecure-plaintext: {} {} listens beyond loopback without "
          "TLS; tokens and answers cross the network in clear",
          door.flag, addr);
  }
}

// Workers on demand (--provisioner); null when none is asked for.
std::unique_ptr<server::Provisioner> make_provisioner(server::Store& store,
                                                      const server::ProvisionerSettings& provision,
                                                      const server::ProvisionerFlags& flags) {
  if (provision.engine == server::EngineKind::kNone) return nullptr;
  auto provisioner = std::make_unique<server::Provisioner>(store.allocations, provision,
                                                           server::make_engine(provision));
  provisioner->crash_after_submissions(flags.crash_after_allocations);
  return provisioner;
}

// The gRPC server, listening (on `grpc_port`, the bound port) and serving both services.
std::unique_ptr<grpc::Server> start_grpc(const CoordinatorFlags& f,
                                         server::SweepServiceImpl& sweeps,
                                         server::WorkerServiceImpl& workers, int& grpc_port) {
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::EnableDefaultHealthCheckService(true);  // grpc.health.v1.Health, for probes
  grpc::ServerBuilder builder;
  std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
  if (!f.tls_cert.empty()) {
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({read_file(f.tls_key), read_file(f.tls_cert)});
    creds = grpc::SslServerCredentials(ssl);
  }
  grpc_port = 0;
  builder.AddListeningPort(f.listen, creds, &grpc_port);
  // No SO_REUSEPORT (gRPC's default on Linux): a second coordinator started on the same port
  // must fail to bind, not quietly take half of the connections of the running one.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // HTTP/2 streams one connection may open at once (gRPC's default: no bound); a client asking
  // for more waits for one of its own to end. --max-calls-per-address bounds all of an address's
  // connections together (calls_in_flight.h).
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, kMaxStreamsPerConnection);
  // A call's headers (metadata: the token and gRPC's own) at most 16 KiB, as the HTTP door's head.
  builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE, 16 * 1024);
  builder.SetMaxReceiveMessageSize(orchestrator_client::kMaxRequestBytes);
  builder.SetMaxSendMessageSize(orchestrator_client::kMaxReplyBytes);
  builder.RegisterService(&sweeps);
  builder.RegisterService(&workers);
  auto server = builder.BuildAndStart();
  if (!server || grpc_port == 0) throw std::runtime_error("cannot listen for gRPC on " + f.listen);
  server->GetHealthCheckService()->SetServingStatus(true);
  return server;
}

// --ports-file: written whole or not at all (renamed into place), for scripts that poll it.
// "health" is 0 without --health.
void write_ports_file(const std::string& path, int grpc_port, int http_port, int health_port) {
  std::ofstream(path + ".tmp") << "{\"grpc\": " << grpc_port << ", \"http\": " << http_port
                               << ", \"health\": " << health_port << "}\n";
  std::rename((path + ".tmp").c_str(), path.c_str());
}

// After SIGHUP: the users file again; a bad one leaves the current users in place.
void reload_users(server::UserDirectory& users, const std::string& users_file) {
  try {
    users.reload();  // connections and calls in flight go on; the next call sees it
    spdlog::info("coordinator: reloaded {} ({} user(s))", users_file, users.size());
  } catch (const std::exception& e) {
    spdlog::error("coordinator: users not reloaded, the previous ones stay: {}", e.what());
  }
}

// Until SIGINT or SIGTERM, every 250 ms: users reloaded after SIGHUP, and expired leases taken
// back; every 5 s, the planner's safety net (planner.h).
// Events from stored news (event_watch.h); the notifier is told at once when there are new ones.
void look_for_events(server::EventWatch& watch, server::Notifier& notifier) {
  try {
    if (watch.look(server::now_ms()) > 0) notifier.wake();
  } catch (const std::exception& e) {
    spdlog::warn("coordinator: events not looked for, retried later: {}", e.what());
  }
}

void housekeeping_loop(server::Store& store, server::ChangeNotifier& changes,
                       server::TuningPlanner& planner, server::UserDirectory& users,
                       server::Gate& gate, server::Notifier& notifier, const CoordinatorFlags& f) {
  server::EventWatch events(store.events, f.notify_settings.no_worker_after_ms);
  int64_t ticks = 0;
  bool replan = false;  // a job ended without a completion, or a planning failed
  while (!g_stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    if (g_reload_users.exchange(false)) reload_users(users, f.users_file);
    if (ticks % 4 == 0) gate.flush_strangers(server::now_ms());
    if (ticks % 8 == 0) look_for_events(events, notifier);  // every 2 s: it scans the jobs
    if (ticks % (4 * 3600) == 0) prune_audit(store, f);     // at the first tick, then hourly
    if (const int n = store.workers.expire_leases(server::now_ms(), 3 * f.options.lease_ms);
        n > 0) {
      spdlog::warn("coordinator: {} job(s) lost their lease and were requeued or failed", n);
      changes.notify(server::Change::kScheduling);
      replan = true;  // a job FAILED by its lease is final without a CompleteJob to plan from
    }
    // Only when something may have been missed, since planning reads every job and summary of a
    // sweep (bench/tuning_bench.cpp).
    if (++ticks % 20 == 0 && (replan || planner.needs_retry())) try {
        replan = false;
        if (planner.plan_open_sweeps(server::now_ms()) > 0)
          changes.notify(server::Change::kScheduling);
      } catch (const std::exception& e) {
        spdlog::warn("coordinator: tuning planning failed, retried later: {}", e.what());
      }
  }
}

// The service, from opening the database to shutting down after SIGINT or SIGTERM.
void serve(const CoordinatorFlags& f, server::UserDirectory& users,
           const server::ProvisionerSettings& provision) {
  server::Store store(f.db_path);
  if (f.max_db_mib > 0) store.database.limit_size(f.max_db_mib << 20);
  // After a restart, running jobs get one fresh lease so their workers can re-register.
  store.workers.extend_leases(server::now_ms() + f.options.lease_ms);
  server::ChangeNotifier changes;
  // Started once gRPC listens, so that the first workers it asks for find the coordinator up.
  const std::unique_ptr<server::Provisioner> provisioner =
      make_provisioner(store, provision, f.provisioner);
  server::Gate gate(users, store.audit, f.auth_failures_per_minute, f.max_calls_per_address);
  server::SweepServiceImpl sweeps(store, f.options, changes, gate, provisioner.get());
  // Tuned sweeps whose planning a restart interrupted get their next jobs before any worker
  // can ask for work.
  server::TuningPlanner planner(store.sweeps, store.metrics);
  planner.plan_open_sweeps(server::now_ms());
  server::WorkerServiceImpl workers(store, f.options, changes, gate, planner);

  int grpc_port = 0;
  const auto grpc_server = start_grpc(f, sweeps, workers, grpc_port);
  const auto [http_host, http_port] = server::split_host_port(f.http);
  http_door::Limits http_limits;
  http_limits.max_connections_per_peer = f.http_connections_per_address;
  server::HttpServer http_server(
      store, gate, [&] { return workers.points_ingested(); }, provisioner.get(),
      f.insecure_plaintext, http_limits);
  const http_door::Tls tls{f.tls_cert.empty() ? "" : read_file(f.tls_cert),
                           f.tls_key.empty() ? "" : read_file(f.tls_key)};
  const int bound_http = http_server.start(http_host, http_port, tls);
  http_door::Door health("coordinator health", http_door::kProbeLimits);
  int bound_health = 0;
  if (!f.health.empty()) {
    http_door::add_health_routes(health);
    const auto [health_host, health_port] = server::split_host_port(f.health);
    bound_health = health.start(health_host, health_port);
  }
  const std::string grpc_host = server::split_host_port(f.listen).first;
  spdlog::info("coordinator: gRPC on {}:{}{}, HTTP on {}://{}:{}/{}, database {}", grpc_host,
               grpc_port, f.tls_cert.empty() ? "" : " (TLS)", tls.enabled() ? "https" : "http",
               http_host, bound_http,
               bound_health ? ", probes on port " + std::to_string(bound_health) : "", f.db_path);
  if (!f.ports_file.empty()) write_ports_file(f.ports_file, grpc_port, bound_http, bound_health);

  if (provisioner) {
    provisioner->start();
    spdlog::info(
        "coordinator: provisioning {} workers through {} (up to {} allocation(s), "
        "workers dial {})",
        provision.limits.shape.backend, server::engine_kind_name(provision.engine),
        provision.limits.max_allocations, provision.coordinator_address);
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGHUP, on_hangup);
  server::Notifier notifier(store.events, f.notify_settings.notifier);
  notifier.start();
  housekeeping_loop(store, changes, planner, users, gate, notifier, f);
  notifier.stop();

  spdlog::info("coordinator: shutting down");
  if (provisioner) provisioner->stop();  // its allocations stay: a restart reconciles them
  changes.close();  // long polls and watches return now instead of at their timeouts
  grpc_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  http_server.stop();
  health.stop();
  gate.flush_strangers(server::now_ms(), /*all=*/true);  // no door is open any more
}

}  // namespace

// --check: the flags were fine; a provisioner's set-up is checked from this host too
// (preflight.h), and with --provision-probe by one short allocation. Exit 0 only when all passed.
int check_provisioning(const server::ProvisionerSettings& provision, bool probe) {
  if (provision.engine == server::EngineKind::kNone) {
    if (probe) {
      std::cerr << "coordinator: --provision-probe needs --provisioner slurm\n";
      return 1;
    }
    std::cout << "coordinator: flags ok\n";
    return 0;
  }
  const std::vector<std::string> problems = server::preflight_problems(provision);
  for (const std::string& p : problems) std::cerr << "coordinator: " << p << "\n";
  if (!problems.empty()) return 1;
  std::cout << "coordinator: flags ok; the " << server::engine_kind_name(provision.engine)
            << " set-up passed its checks from this host (script, worker binary, "
               "sbatch --test-only / the Job manifest)\n";
  if (!probe) return 0;
  const server::ProbeResult r = server::probe_allocation(provision, std::chrono::minutes(10));
  std::cout << "coordinator: " << r.summary << "\n";
  if (!r.output.empty()) std::cout << r.output << "\n";
  return r.ok ? 0 : 1;
}

int main(int argc, char** argv) {
  CLI::App app{"coordinator: schedules sweeps onto workers and stores their curves"};
  CoordinatorFlags flags;
  add_address_flags(app, flags);
  add_access_flags(app, flags);
  add_scheduling_flags(app, flags);
  add_operation_flags(app, flags);
  server::add_provisioner_flags(app, flags.provisioner);
  server::add_notify_flags(app, flags.notify);
  auto* hash_token = app.add_subcommand(
      "hash-token", "read a token on stdin and print its SHA-256 for --users-file, then exit");
  std::string backup_file;
  auto* backup = app.add_subcommand(
      "backup", "copy --db consistently into FILE (safe while a coordinator runs) and exit");
  backup->add_option("file", backup_file, "the backup's path")->required();
  backup->fallthrough();  // `coordinator backup FILE --db sweeps.db` as well as `--db ... backup
                          // FILE`
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    if (hash_token->parsed()) return print_token_hash();
    finish_flags(flags);
    server::UserDirectory users(flags.users_file, flags.token);
    check_listen_addresses(flags, users);
    if (backup->parsed()) {
      server::backup_database(flags.db_path, backup_file);
      std::cout << "coordinator: backed up " << flags.db_path << " to " << backup_file << "\n";
      return 0;
    }
    const server::ProvisionerSettings provision = server::finish_provisioner_settings(
        flags.provisioner, flags.listen, flags.db_path, flags.token);
    if (flags.check_only) return check_provisioning(provision, flags.provisioner.probe);
    serve(flags, users, provision);
    return 0;
  } catch (const std::exception& e) {
    spdlog::error("coordinator: {}", e.what());
    return 1;
  }
}
