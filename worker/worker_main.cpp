// `worker`: the worker daemon, and (as `worker run-job`) the child process that runs one job.
//   worker --coordinator 127.0.0.1:50051 [--slots N] [--worker-id ID] [--token T] [--tls-ca FILE]
#include <httplib.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "child_job.h"
#include "daemon.h"
#include "trainer_core/backend/cuda/device_query.h"

namespace {
worker::Daemon* g_daemon = nullptr;
void on_signal(int) {
  if (g_daemon) g_daemon->shutdown();
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"worker: runs sweep jobs for a coordinator"};
  worker::DaemonOptions options;
  options.coordinator.address = "127.0.0.1:50051";
  if (const char* t = std::getenv("SWEEP_TOKEN")) options.coordinator.token = t;
  if (const char* a = std::getenv("SWEEP_COORDINATOR")) options.coordinator.address = a;
  if (const char* a = std::getenv("SWEEP_ALLOCATION")) options.allocation = a;
  std::string token_file, backend = "auto";
  bool check_only = false;
  app.add_option("--coordinator", options.coordinator.address,
                 "coordinator gRPC address (env SWEEP_COORDINATOR)");
  app.add_option("--token", options.coordinator.token, "bearer token (env SWEEP_TOKEN)");
  app.add_option("--token-file", token_file, "read the bearer token from this file");
  app.add_option("--tls-ca", options.coordinator.tls_ca,
                 "CA certificate (PEM) to verify a TLS coordinator");
  app.add_option("--worker-id", options.worker_id,
                 "stable id of this worker (default: hostname-pid)");
  app.add_option("--backend", backend, "auto | cpu | cuda (auto: cuda when a GPU is present)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  app.add_option("--slots", options.slots,
                 "jobs run at once (default 1; backend cuda: one per GPU)")
      ->check(CLI::Range(1, 256));
  app.add_option("--threads-per-job", options.threads_per_job,
                 "CPU threads per job (0: cores / slots)");
  app.add_option("--work-dir", options.work_dir,
                 "where job configs and logs go (default .sweep-worker/<id>)");
  app.add_option("--max-buffered-points", options.max_buffered_points,
                 "metric points per job kept in memory while the coordinator is away; older ones "
                 "spill to the work dir")
      ->check(CLI::Range(100, 100000000));
  app.add_option("--allocation", options.allocation,
                 "the allocation that started this worker (env SWEEP_ALLOCATION; set by the "
                 "coordinator's provisioner)");
  app.add_option("--idle-exit-s", options.idle_exit_s,
                 "with no job for this many seconds, leave and exit 0 (0: never)")
      ->check(CLI::Range(0, 10000000));
  app.add_flag("--check", check_only, "validate the flags and exit");
  std::string health;
  app.add_option("--health", health,
                 "serve /healthz (alive) and /readyz (registered) on host:port, e.g. 0.0.0.0:8081");

  std::string job_config;
  int metrics_fd = -1;
  auto* run_job = app.add_subcommand("run-job", "internal: run one job (started by the daemon)");
  run_job->add_option("--config", job_config)->required();
  run_job->add_option("--metrics-fd", metrics_fd)->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (run_job->parsed()) return worker::run_child_job(job_config, metrics_fd);

  try {
    if (!token_file.empty()) {
      std::ifstream in(token_file);
      if (!in) throw std::runtime_error("cannot read " + token_file);
      std::getline(in, options.coordinator.token);
      // Trimmed like the coordinator's token file: an editor's trailing space or CR must not
      // make the worker's token differ from the coordinator's.
      auto& token = options.coordinator.token;
      token.erase(0, token.find_first_not_of(" \t\r\n"));
      token.erase(token.find_last_not_of(" \t\r\n") + 1);
    }
    const bool have_gpus = !trainer_core::list_cuda_devices().empty();
    const std::string unusable = have_gpus ? "" : trainer_core::cuda_unusable_reason();
    if (backend == "cuda" && !have_gpus)
      throw std::runtime_error("--backend cuda: " +
                               (unusable.empty() ? "no CUDA device or driver present" : unusable));
    // A GPU node whose GPUs cannot be used must not quietly become a CPU worker.
    if (backend == "auto" && !unusable.empty())
      spdlog::warn("worker: GPUs present but unusable, running on the CPU: {}", unusable);
    if (backend == "auto") backend = have_gpus ? "cuda" : "cpu";
    options.backend = backend;
    if (backend == "cuda") {
      options.gpus = int(trainer_core::list_cuda_devices().size());
      // One job per GPU unless told otherwise; a job asking for N GPUs takes N of them.
      if (app.count("--slots") == 0) options.slots = options.gpus;
    }
    if (options.worker_id.empty()) {
      char host[256] = {};
      gethostname(host, sizeof host - 1);
      options.worker_id = std::string(host) + "-" + std::to_string(getpid());
    }
    if (options.work_dir.empty()) options.work_dir = ".sweep-worker/" + options.worker_id;
    options.self_path = std::filesystem::canonical("/proc/self/exe").string();
    std::pair<std::string, int> health_addr;
    if (!health.empty()) {
      const auto colon = health.rfind(':');
      if (colon == std::string::npos)
        throw std::invalid_argument("--health: expected host:port, got '" + health + "'");
      health_addr = {health.substr(0, colon), std::stoi(health.substr(colon + 1))};
    }
    if (check_only) {
      std::cout << "worker: flags ok (" << options.backend << " backend)\n";
      return 0;
    }
    worker::Daemon daemon(options);
    g_daemon = &daemon;
    httplib::Server health_server;
    std::thread health_thread;
    if (!health.empty()) {
      health_server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
        res.set_content("ok\n", "text/plain");
      });
      health_server.Get("/readyz", [&daemon](const httplib::Request&, httplib::Response& res) {
        res.status = daemon.ready() ? 200 : 503;
        res.set_content(daemon.ready() ? "ready\n" : "not registered\n", "text/plain");
      });
      if (!health_server.bind_to_port(health_addr.first, health_addr.second))
        throw std::runtime_error("--health: cannot listen on " + health);
      health_thread = std::thread([&] { health_server.listen_after_bind(); });
    }
    std::signal(SIGTERM, on_signal);
    std::signal(SIGINT, on_signal);
    std::signal(SIGPIPE, SIG_IGN);
    const int code = daemon.run();
    if (health_thread.joinable()) {
      health_server.stop();
      health_thread.join();
    }
    return code;
  } catch (const std::exception& e) {
    spdlog::error("worker: {}", e.what());
    return 1;
  }
}
