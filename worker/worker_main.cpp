// `worker`: the worker daemon, and (as `worker run-job`) the child process that runs one job.
//   worker --coordinator 127.0.0.1:50051 [--slots N] [--worker-id ID] [--token T] [--tls-ca FILE]
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
#include "http_door/http_door.h"
#include "trainer_core/backend/cuda/device_query.h"

namespace {
worker::Daemon* g_daemon = nullptr;
void on_signal(int) {
  if (g_daemon) g_daemon->shutdown();
}
// Everything the daemon's command line sets; the environment gives some defaults.
struct WorkerFlags {
  worker::DaemonOptions options;
  std::string token_file, backend = "auto";
  std::string health;  // host:port for /healthz and /readyz; empty: none
  bool check_only = false;
};

WorkerFlags flags_from_environment() {
  WorkerFlags f;
  f.options.coordinator.address = "127.0.0.1:50051";
  if (const char* t = std::getenv("SWEEP_TOKEN")) f.options.coordinator.token = t;
  if (const char* a = std::getenv("SWEEP_COORDINATOR")) f.options.coordinator.address = a;
  if (const char* a = std::getenv("SWEEP_ALLOCATION")) f.options.allocation = a;
  return f;
}

// The option groups, in the order --help lists them.

void add_connection_flags(CLI::App& app, WorkerFlags& f) {
  worker::DaemonOptions& o = f.options;
  app.add_option("--coordinator", o.coordinator.address,
                 "coordinator gRPC address (env SWEEP_COORDINATOR)");
  app.add_option("--token", o.coordinator.token, "bearer token (env SWEEP_TOKEN)");
  app.add_option("--token-file", f.token_file, "read the bearer token from this file");
  app.add_option("--tls-ca", o.coordinator.tls_ca,
                 "CA certificate (PEM) to verify a TLS coordinator");
  app.add_option("--worker-id", o.worker_id, "stable id of this worker (default: hostname-pid)");
}

void add_capacity_flags(CLI::App& app, WorkerFlags& f) {
  worker::DaemonOptions& o = f.options;
  app.add_option("--backend", f.backend, "auto | cpu | cuda (auto: cuda when a GPU is present)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  app.add_option("--slots", o.slots, "jobs run at once (default 1; backend cuda: one per GPU)")
      ->check(CLI::Range(1, 256));
  app.add_option("--threads-per-job", o.threads_per_job, "CPU threads per job (0: cores / slots)");
  app.add_option("--work-dir", o.work_dir,
                 "where job configs and logs go (default .sweep-worker/<id>)");
  app.add_option("--max-buffered-points", o.max_buffered_points,
                 "metric points per job kept in memory while the coordinator is away; older ones "
                 "spill to the work dir")
      ->check(CLI::Range(100, 100000000));
}

void add_operation_flags(CLI::App& app, WorkerFlags& f) {
  app.add_option("--allocation", f.options.allocation,
                 "the allocation that started this worker (env SWEEP_ALLOCATION; set by the "
                 "coordinator's provisioner)");
  app.add_option("--idle-exit-s", f.options.idle_exit_s,
                 "with no job for this many seconds, leave and exit 0 (0: never)")
      ->check(CLI::Range(0, 10000000));
  app.add_flag("--check", f.check_only, "validate the flags and exit");
  app.add_option("--health", f.health,
                 "serve /healthz (alive) and /readyz (registered) on host:port, e.g. 0.0.0.0:8081");
}

// The first line of `path`, trimmed like the coordinator's token file: an editor's trailing space
// or CR must not make the worker's token differ from the coordinator's.
std::string read_token_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::string token;
  std::getline(in, token);
  token.erase(0, token.find_first_not_of(" \t\r\n"));
  token.erase(token.find_last_not_of(" \t\r\n") + 1);
  return token;
}

// --backend auto resolved by the GPUs present; backend cuda hands out every GPU, one job per GPU
// unless --slots says otherwise (`slots_given`). Throws when cuda is asked for and unusable.
void choose_backend(WorkerFlags& f, bool slots_given) {
  const bool have_gpus = !trainer_core::list_cuda_devices().empty();
  const std::string unusable = have_gpus ? "" : trainer_core::cuda_unusable_reason();
  if (f.backend == "cuda" && !have_gpus)
    throw std::runtime_error("--backend cuda: " +
                             (unusable.empty() ? "no CUDA device or driver present" : unusable));
  // A GPU node whose GPUs cannot be used must not quietly become a CPU worker.
  if (f.backend == "auto" && !unusable.empty())
    spdlog::warn("worker: GPUs present but unusable, running on the CPU: {}", unusable);
  if (f.backend == "auto") f.backend = have_gpus ? "cuda" : "cpu";
  f.options.backend = f.backend;
  if (f.backend == "cuda") {
    f.options.gpus = int(trainer_core::list_cuda_devices().size());
    // A job asking for N GPUs takes N of them.
    if (!slots_given) f.options.slots = f.options.gpus;
  }
}

// The defaults that depend on this process: worker id hostname-pid, its work dir, this binary.
void fill_identity(worker::DaemonOptions& o) {
  if (o.worker_id.empty()) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    o.worker_id = std::string(host) + "-" + std::to_string(getpid());
  }
  if (o.work_dir.empty()) o.work_dir = ".sweep-worker/" + o.worker_id;
  o.self_path = std::filesystem::canonical("/proc/self/exe").string();
}

// --health's host:port (empty: none).
std::pair<std::string, int> health_address(const std::string& health) {
  if (health.empty()) return {};
  const auto colon = health.rfind(':');
  const std::string port = colon == std::string::npos ? "" : health.substr(colon + 1);
  // Digits only, at most 5 of them: std::stoi would take "80x" and throw a bare "stoi" on "x".
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535)
    throw std::invalid_argument("--health: expected host:port with a port in 0..65535, got '" +
                                health + "'");
  return {health.substr(0, colon), std::stoi(port)};
}

// The daemon until SIGTERM or SIGINT and its jobs handed back or finished; its exit code.
int run_daemon(const WorkerFlags& f, const std::pair<std::string, int>& health_addr) {
  worker::Daemon daemon(f.options);
  g_daemon = &daemon;
  // /healthz (the process is up) and /readyz (the daemon is registered), bounded like every
  // door (http_door.h): a client that holds connections open cannot fail the probes of others.
  http_door::Door health("worker health", http_door::kProbeLimits);
  if (!f.health.empty()) {
    http_door::add_health_routes(
        health, [&daemon] { return daemon.ready() ? std::string() : "not registered"; });
    try {
      health.start(health_addr.first, health_addr.second);
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(std::string("--health: ") + e.what());
    }
  }
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  std::signal(SIGPIPE, SIG_IGN);
  const int code = daemon.run();
  health.stop();
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"worker: runs sweep jobs for a coordinator"};
  WorkerFlags flags = flags_from_environment();
  add_connection_flags(app, flags);
  add_capacity_flags(app, flags);
  add_operation_flags(app, flags);

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
    if (!flags.token_file.empty())
      flags.options.coordinator.token = read_token_file(flags.token_file);
    choose_backend(flags, app.count("--slots") > 0);
    fill_identity(flags.options);
    const std::pair<std::string, int> health_addr = health_address(flags.health);
    if (flags.check_only) {
      std::cout << "worker: flags ok (" << flags.options.backend << " backend)\n";
      return 0;
    }
    return run_daemon(flags, health_addr);
  } catch (const std::exception& e) {
    spdlog::error("worker: {}", e.what());
    return 1;
  }
}
