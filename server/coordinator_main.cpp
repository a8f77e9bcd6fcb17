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
#include "server/provisioning/flags.h"
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
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"coordinator: schedules sweeps onto workers and stores their curves"};
  std::string listen = "127.0.0.1:50051", http = "127.0.0.1:8080", db_path = "sweeps.db";
  std::string token = std::getenv("SWEEP_TOKEN") ? std::getenv("SWEEP_TOKEN") : "";
  std::string token_file, tls_cert, tls_key, ports_file;
  server::CoordinatorOptions options;
  int64_t max_jobs = int64_t(sweep_file::kDefaultMaxJobsPerSweep);
  bool check_only = false;
  app.add_option("--listen", listen, "gRPC address host:port (port 0 picks one)");
  app.add_option("--http", http,
                 "HTTP address host:port for /metrics and the dashboard (port 0 picks one)");
  app.add_option("--db", db_path, "SQLite database file (created and migrated on start)");
  app.add_option("--token", token,
                 "bearer token required from workers and sweepctl (env SWEEP_TOKEN)");
  app.add_option("--token-file", token_file, "read the token from this file");
  std::string users_file;
  app.add_option(
      "--users-file", users_file,
      "users, roles and their tokens' SHA-256 (YAML; docs/deploy.md); reloaded on SIGHUP");
  app.add_option("--tls-cert", tls_cert, "PEM certificate chain: serve gRPC over TLS");
  app.add_option("--tls-key", tls_key, "PEM private key for --tls-cert");
  app.add_option("--checkpoint-root", options.checkpoint_root,
                 "checkpoint directory shared by all workers");
  app.add_option("--lease-ms", options.lease_ms, "a worker silent this long loses its jobs")
      ->check(CLI::Range(500, 3600000));
  app.add_option("--heartbeat-ms", options.heartbeat_interval_ms,
                 "heartbeat interval told to workers")
      ->check(CLI::Range(100, 600000));
  app.add_option("--max-jobs", max_jobs, "largest sweep expansion accepted")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--max-running-per-user", options.max_running_per_user,
                 "jobs one user may have running at once (0: no cap)")
      ->check(CLI::Range(0, 1000000));
  app.add_option("--ports-file", ports_file,
                 "write the bound ports as JSON here (for scripts and tests)");
  int64_t max_db_mib = 0;
  app.add_option(
         "--max-db-mib", max_db_mib,
         "cap the database file at this size; writes past it answer RESOURCE_EXHAUSTED (0: no cap)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 40));
  app.add_flag("--check", check_only, "validate the flags and exit");
  app.add_option("--crash-after-completions", options.crash_after_completions,
                 "tests only: exit like kill -9 after storing the N-th job completion")
      ->group("");  // hidden from --help
  server::ProvisionerFlags provisioner_flags;
  server::add_provisioner_flags(app, provisioner_flags);
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
    if (hash_token->parsed()) {
      std::string line;
      std::getline(std::cin, line);
      std::cout << server::token_sha256(server::trim(line)) << "\n";
      return 0;
    }
    if (!token_file.empty()) token = server::trim(read_file(token_file));
    options.max_jobs_per_sweep = size_t(max_jobs);
    if (tls_cert.empty() != tls_key.empty())
      throw std::invalid_argument("--tls-cert and --tls-key go together");
    server::UserDirectory users(users_file, token);
    for (const auto& addr : {listen, http})
      if (auto problem = server::listen_problem(addr, !users.open()); !problem.empty())
        throw std::invalid_argument(problem);
    if (backup->parsed()) {
      server::backup_database(db_path, backup_file);
      std::cout << "coordinator: backed up " << db_path << " to " << backup_file << "\n";
      return 0;
    }
    const server::ProvisionerSettings provision =
        server::finish_provisioner_settings(provisioner_flags, listen, db_path, token);
    if (check_only) {
      std::cout << "coordinator: flags ok\n";
      return 0;
    }

    server::Store store(db_path);
    if (max_db_mib > 0) store.database.limit_size(max_db_mib << 20);
    // After a restart, running jobs get one fresh lease so their workers can re-register.
    store.workers.extend_leases(server::now_ms() + options.lease_ms);
    server::ChangeNotifier changes;
    // Workers on demand (--provisioner): started once gRPC listens, so the first workers it asks
    // for find the coordinator up.
    std::unique_ptr<server::Provisioner> provisioner;
    if (provision.engine != server::EngineKind::kNone) {
      provisioner = std::make_unique<server::Provisioner>(store.allocations, provision,
                                                          server::make_engine(provision));
      provisioner->crash_after_submissions(provisioner_flags.crash_after_allocations);
    }
    server::Gate gate(users, store.audit);
    server::SweepServiceImpl sweeps(store, options, changes, gate, provisioner.get());
    // Tuned sweeps whose planning a restart interrupted get their next jobs before any worker
    // can ask for work.
    server::TuningPlanner planner(store.sweeps, store.metrics);
    planner.plan_open_sweeps(server::now_ms());
    server::WorkerServiceImpl workers(store, options, changes, gate, planner);

    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::EnableDefaultHealthCheckService(true);  // grpc.health.v1.Health, for probes
    grpc::ServerBuilder builder;
    std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
    if (!tls_cert.empty()) {
      grpc::SslServerCredentialsOptions ssl;
      ssl.pem_key_cert_pairs.push_back({read_file(tls_key), read_file(tls_cert)});
      creds = grpc::SslServerCredentials(ssl);
    }
    int grpc_port = 0;
    builder.AddListeningPort(listen, creds, &grpc_port);
    // No SO_REUSEPORT (gRPC's default on Linux): a second coordinator started on the same port
    // must fail to bind, not quietly take half of the connections of the running one.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    builder.SetMaxReceiveMessageSize(orchestrator_client::kMaxRequestBytes);
    builder.SetMaxSendMessageSize(orchestrator_client::kMaxReplyBytes);
    builder.RegisterService(&sweeps);
    builder.RegisterService(&workers);
    auto server = builder.BuildAndStart();
    if (!server || grpc_port == 0) throw std::runtime_error("cannot listen for gRPC on " + listen);
    server->GetHealthCheckService()->SetServingStatus(true);

    const auto [http_host, http_port] = server::split_host_port(http);
    server::HttpServer http_server(
        store, gate, [&] { return workers.points_ingested(); }, provisioner.get());
    const int bound_http = http_server.start(http_host, http_port);
    const std::string grpc_host = server::split_host_port(listen).first;
    spdlog::info("coordinator: gRPC on {}:{}{}, HTTP on http://{}:{}/, database {}", grpc_host,
                 grpc_port, tls_cert.empty() ? "" : " (TLS)", http_host, bound_http, db_path);
    if (!ports_file.empty()) {
      std::ofstream(ports_file + ".tmp")
          << "{\"grpc\": " << grpc_port << ", \"http\": " << bound_http << "}\n";
      std::rename((ports_file + ".tmp").c_str(), ports_file.c_str());
    }

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
    int64_t ticks = 0;
    bool replan = false;  // a job ended without a completion, or a planning failed
    while (!g_stop) {
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      if (g_reload_users.exchange(false)) try {
          users.reload();  // connections and calls in flight go on; the next call sees it
          spdlog::info("coordinator: reloaded {} ({} user(s))", users_file, users.size());
        } catch (const std::exception& e) {
          spdlog::error("coordinator: users not reloaded, the previous ones stay: {}", e.what());
        }
      if (const int n = store.workers.expire_leases(server::now_ms(), 3 * options.lease_ms);
          n > 0) {
        spdlog::warn("coordinator: {} job(s) lost their lease and were requeued or failed", n);
        changes.notify(server::Change::kScheduling);
        replan = true;  // a job FAILED by its lease is final without a CompleteJob to plan from
      }
      // Every 5 s, the planner's safety net (planner.h): only when something may have been missed,
      // since planning reads every job and summary of a sweep (bench/tuning_bench.cpp).
      if (++ticks % 20 == 0 && (replan || planner.needs_retry())) try {
          replan = false;
          if (planner.plan_open_sweeps(server::now_ms()) > 0)
            changes.notify(server::Change::kScheduling);
        } catch (const std::exception& e) {
          spdlog::warn("coordinator: tuning planning failed, retried later: {}", e.what());
        }
    }
    spdlog::info("coordinator: shutting down");
    if (provisioner) provisioner->stop();  // its allocations stay: a restart reconciles them
    changes.close();  // long polls and watches return now instead of at their timeouts
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    http_server.stop();
    return 0;
  } catch (const std::exception& e) {
    spdlog::error("coordinator: {}", e.what());
    return 1;
  }
}
