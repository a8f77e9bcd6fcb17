#include "server/provisioning/settings.h"

#include <filesystem>

namespace server {

const char* engine_kind_name(EngineKind kind) {
  static const char* const kNames[] = {"none", "slurm", "kubernetes"};
  return kNames[int(kind)];
}

std::vector<std::string> settings_problems(const ProvisionerSettings& s) {
  std::vector<std::string> problems;
  if (s.engine == EngineKind::kNone) return problems;
  auto need = [&](bool ok, const std::string& problem) {
    if (!ok) problems.push_back(problem);
  };
  const AllocationShape& shape = s.limits.shape;
  need(shape.backend == "cpu" || shape.backend == "cuda",
       "--provision-backend: expected cpu or cuda, got '" + shape.backend + "'");
  need(shape.backend != "cuda" || shape.gpus_per_node >= 1,
       "--provision-gpus-per-node: a cuda worker needs at least 1 GPU");
  need(shape.backend != "cpu" || shape.gpus_per_node == 0,
       "--provision-gpus-per-node: a cpu worker asks for no GPU (got " +
           std::to_string(shape.gpus_per_node) + ")");
  need(shape.slots_per_node >= 1, "--provision-slots-per-node: at least 1");
  need(shape.nodes >= 1, "--provision-nodes: at least 1 node per allocation");
  need(s.limits.max_allocations >= 1, "--provision-max-allocations: at least 1");
  need(s.limits.delay_ms >= 0, "--provision-delay-s: not negative");
  need(s.idle_timeout_s >= 1, "--provision-idle-timeout-s: at least 1 second");
  need(!s.coordinator_address.empty() && s.coordinator_address.find(':') != std::string::npos,
       "--provision-coordinator-address: host:port the workers dial is needed (the --listen "
       "address is a wildcard or port 0)");
  need(!s.state_dir.empty(), "--provision-dir: a directory is needed");
  if (s.engine == EngineKind::kSlurm) {
    need(!s.slurm.script.empty() && std::filesystem::is_regular_file(s.slurm.script),
         "--provision-slurm-script: no batch script at '" + s.slurm.script +
             "' (deploy/slurm/sweep-workers.sbatch)");
    need(!s.slurm.time_limit.empty() &&
             s.slurm.time_limit.find_first_not_of("0123456789:-") == std::string::npos,
         "--provision-time-limit: expected a Slurm time such as 24:00:00 or 1-00:00:00, got '" +
             s.slurm.time_limit + "'");
    for (const std::string& arg : s.slurm.extra_args)
      need(arg.rfind("--", 0) == 0 && arg.rfind("--job-name", 0) != 0 &&
               arg.rfind("--output", 0) != 0 && arg.rfind("--parsable", 0) != 0,
           "--provision-sbatch-arg '" + arg +
               "': expected one sbatch flag such as --constraint=a100 (the provisioner sets the "
               "job name, output and --parsable itself)");
  }
  if (s.engine == EngineKind::kKubernetes) {
    need(!s.kubernetes.image.empty(), "--provision-k8s-image: the worker image is needed");
    need(!s.kubernetes.namespace_name.empty(), "--provision-k8s-namespace: a namespace is needed");
    need(!s.kubernetes.token_secret.empty() || s.worker_token.empty(),
         "--provision-k8s-token-secret: the coordinator has a token; name the Secret holding it");
    need(s.kubernetes.pod_template.empty() ||
             std::filesystem::is_regular_file(s.kubernetes.pod_template),
         "--provision-k8s-pod-template: no file at '" + s.kubernetes.pod_template + "'");
  }
  return problems;
}

}  // namespace server
