// The coordinator's --provisioner and --provision-* flags, registered on its command line, and
// the settings they make once parsed (defaults that depend on others: slots from GPUs, the
// state directory beside the database, the workers' address from --listen).
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>

#include "server/provisioning/settings.h"

namespace server {

struct ProvisionerFlags {
  ProvisionerSettings settings;
  std::string engine = "none";
  double delay_s = 30;
  int slots_per_node = 0;           // 0: one per GPU (cuda), 1 (cpu)
  int gpus_per_node = -1;           // -1: 8 (cuda), 0 (cpu)
  int crash_after_allocations = 0;  // tests only
  std::string worker_token_file;    // empty: the coordinator's --token
  std::string worker_binary;        // empty: resolve_worker_binary's order
  bool probe = false;               // --check --provision-probe: one short allocation (preflight.h)
};

void add_provisioner_flags(CLI::App& app, ProvisionerFlags& flags);

// The worker binary provisioned workers run, in one order (docs/deploy.md): --provision-worker-
// binary when given; else the environment's SWEEP_WORKER_BINARY; else an executable `worker`
// beside the coordinator's own executable (an install), or at ../worker/worker from it (the build
// tree: build/server/coordinator, build/worker/worker); else `worker` on the nodes' PATH.
// Returns the choice and how it was made ("--provision-worker-binary", "SWEEP_WORKER_BINARY", ...).
struct WorkerBinary {
  std::string path, source;
};
// A regular file this process may execute.
bool is_executable_file(const std::filesystem::path& path);

WorkerBinary resolve_worker_binary(const std::string& flag, const char* environment,
                                   const std::string& coordinator_executable);

// The settings, with the defaults filled in; throws std::invalid_argument listing every problem.
ProvisionerSettings finish_provisioner_settings(ProvisionerFlags& flags, const std::string& listen,
                                                const std::string& db_path,
                                                const std::string& token);

}  // namespace server
