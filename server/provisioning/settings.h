// The provisioner's settings: `coordinator --provisioner none | slurm | kubernetes` and its
// --provision-* flags (flags.h registers them; docs/deploy.md documents each). Checked at start:
// settings_problems names every bad or missing setting by its flag.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "server/provisioning/demand.h"

namespace server {

enum class EngineKind { kNone, kSlurm, kKubernetes };

struct SlurmSettings {
  std::string script;  // the batch script sbatch runs: deploy/slurm/sweep-workers.sbatch
  std::string partition, account, qos;
  std::string time_limit = "24:00:00";
  std::vector<std::string>
      extra_args;  // more sbatch flags, each one argument ("--constraint=a100")
  // The worker on the compute nodes (a full path, or a name on their PATH), as
  // resolve_worker_binary (flags.h) chose it; worker_binary_source says how, for the start log.
  std::string worker_binary = "worker";
  std::string worker_binary_source;
};

struct KubernetesSettings {
  std::string kubectl = "kubectl";
  std::string namespace_name = "sweeps";
  std::string image = "sweep-worker:latest";
  std::string token_secret = "sweep-token";  // a Secret with the key "token"
  std::string pod_template;  // optional: a file with a pod template (YAML or JSON) to start from
};

struct ProvisionerSettings {
  EngineKind engine = EngineKind::kNone;
  DemandLimits limits;
  int64_t idle_timeout_s = 300;     // a provisioned worker idle this long leaves
  std::string coordinator_address;  // host:port the provisioned workers dial
  std::string worker_token;         // the coordinator's token: reaches workers as a file/Secret
  std::string state_dir;            // Slurm: the token file and the allocations' output
  int64_t interval_ms = 2000;       // how often the provisioner looks
  SlurmSettings slurm;
  KubernetesSettings kubernetes;
};

const char* engine_kind_name(EngineKind kind);  // "none" | "slurm" | "kubernetes"

// Every problem, each naming its flag; empty when the settings can run.
std::vector<std::string> settings_problems(const ProvisionerSettings& settings);

}  // namespace server
