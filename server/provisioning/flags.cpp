#include "server/provisioning/flags.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace server {

void add_provisioner_flags(CLI::App& app, ProvisionerFlags& f) {
  ProvisionerSettings& s = f.settings;
  const char* group = "Workers on demand (docs/deploy.md)";
  app.add_option("--provisioner", f.engine,
                 "none | slurm | kubernetes: ask this engine for workers when jobs wait")
      ->check(CLI::IsMember({"none", "slurm", "kubernetes"}))
      ->group(group);
  app.add_option("--provision-backend", s.limits.shape.backend, "cpu | cuda: the workers it starts")
      ->group(group);
  app.add_option("--provision-gpus-per-node", f.gpus_per_node, "GPUs per node (default cuda 8)")
      ->group(group);
  app.add_option("--provision-slots-per-node", f.slots_per_node,
                 "jobs per worker (default: one per GPU; cpu 1)")
      ->group(group);
  app.add_option("--provision-nodes", s.limits.shape.nodes,
                 "nodes per allocation (one worker each)")
      ->group(group);
  app.add_option("--provision-max-allocations", s.limits.max_allocations,
                 "allocations open at once, at most")
      ->group(group);
  app.add_option("--provision-delay-s", f.delay_s,
                 "a need (or a surplus) must last this long before acting")
      ->group(group);
  app.add_option("--provision-idle-timeout-s", s.idle_timeout_s,
                 "a provisioned worker with no job this long leaves, ending its allocation")
      ->group(group);
  app.add_option("--provision-coordinator-address", s.coordinator_address,
                 "host:port the provisioned workers dial (default: --listen)")
      ->group(group);
  app.add_option("--provision-worker-token-file", f.worker_token_file,
                 "the token provisioned workers use, e.g. a worker-role user's (default: --token)")
      ->group(group);
  app.add_option("--provision-dir", s.state_dir,
                 "Slurm: token file and allocation output, on a filesystem the nodes share "
                 "(default: <db>.provision)")
      ->group(group);
  app.add_option("--provision-slurm-script", s.slurm.script,
                 "the batch script (deploy/slurm/sweep-workers.sbatch)")
      ->group(group);
  app.add_option("--provision-partition", s.slurm.partition, "Slurm partition")->group(group);
  app.add_option("--provision-account", s.slurm.account, "Slurm account")->group(group);
  app.add_option("--provision-qos", s.slurm.qos, "Slurm QoS")->group(group);
  app.add_option("--provision-time-limit", s.slurm.time_limit, "Slurm time limit per allocation")
      ->group(group);
  app.add_option("--provision-sbatch-arg", s.slurm.extra_args,
                 "one more sbatch flag (repeatable), e.g. --constraint=a100")
      ->group(group);
  app.add_option("--provision-worker-binary", f.worker_binary,
                 "the worker on the compute nodes (default: $SWEEP_WORKER_BINARY, else a worker "
                 "beside this coordinator, else worker on PATH)")
      ->group(group);
  app.add_option("--provision-k8s-namespace", s.kubernetes.namespace_name, "Kubernetes namespace")
      ->group(group);
  app.add_option("--provision-k8s-image", s.kubernetes.image, "worker image")->group(group);
  app.add_option("--provision-k8s-token-secret", s.kubernetes.token_secret,
                 "Secret whose key 'token' holds the token")
      ->group(group);
  app.add_option("--provision-k8s-pod-template", s.kubernetes.pod_template,
                 "pod template (YAML/JSON, or a workload holding one) to start from")
      ->group(group);
  app.add_option("--provision-kubectl", s.kubernetes.kubectl, "kubectl to run")->group(group);
  app.add_flag("--provision-probe", f.probe,
               "with --check: queue one short allocation that runs worker --check, and report it")
      ->group(group);
  app.add_option("--crash-after-allocations", f.crash_after_allocations,
                 "tests only: exit like kill -9 right after the N-th allocation is accepted")
      ->group("");
}

bool is_executable_file(const std::filesystem::path& path) {
  std::error_code error;
  return std::filesystem::is_regular_file(path, error) && access(path.c_str(), X_OK) == 0;
}

WorkerBinary resolve_worker_binary(const std::string& flag, const char* environment,
                                   const std::string& coordinator_executable) {
  if (!flag.empty()) return {flag, "--provision-worker-binary"};
  if (environment && *environment) return {environment, "SWEEP_WORKER_BINARY"};
  if (!coordinator_executable.empty()) {
    const std::filesystem::path folder =
        std::filesystem::path(coordinator_executable).parent_path();
    const std::pair<std::filesystem::path, const char*> candidates[] = {
        {folder / "worker", "the worker beside the coordinator's executable"},
        {folder.parent_path() / "worker" / "worker", "the worker of the coordinator's build tree"}};
    for (const auto& [path, source] : candidates)
      if (is_executable_file(path)) return {path.string(), source};
  }
  return {"worker", "the default: worker on the compute nodes' PATH"};
}

ProvisionerSettings finish_provisioner_settings(ProvisionerFlags& f, const std::string& listen,
                                                const std::string& db_path,
                                                const std::string& token) {
  ProvisionerSettings s = f.settings;
  s.engine = f.engine == "slurm"        ? EngineKind::kSlurm
             : f.engine == "kubernetes" ? EngineKind::kKubernetes
                                        : EngineKind::kNone;
  AllocationShape& shape = s.limits.shape;
  const bool gpu = shape.backend == "cuda";
  shape.gpus_per_node = f.gpus_per_node >= 0 ? f.gpus_per_node : (gpu ? 8 : 0);
  shape.slots_per_node = f.slots_per_node > 0 ? f.slots_per_node : (gpu ? shape.gpus_per_node : 1);
  s.limits.delay_ms = int64_t(f.delay_s * 1000);
  s.worker_token = token;
  if (!f.worker_token_file.empty()) {
    std::ifstream in(f.worker_token_file);
    if (!in || !std::getline(in, s.worker_token))
      throw std::invalid_argument("--provision-worker-token-file: cannot read " +
                                  f.worker_token_file);
    s.worker_token.erase(s.worker_token.find_last_not_of(" \t\r\n") + 1);
  }
  if (s.coordinator_address.empty()) {
    const auto colon = listen.rfind(':');
    const std::string host = listen.substr(0, colon), port = listen.substr(colon + 1);
    if (host != "0.0.0.0" && host != "[::]" && host != "::" && port != "0")
      s.coordinator_address = listen;
  }
  if (s.state_dir.empty()) s.state_dir = db_path + ".provision";
  std::error_code error;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
  const WorkerBinary worker = resolve_worker_binary(
      f.worker_binary, std::getenv("SWEEP_WORKER_BINARY"), error ? std::string() : self.string());
  s.slurm.worker_binary = worker.path;
  s.slurm.worker_binary_source = worker.source;
  std::string all;
  for (const std::string& p : settings_problems(s)) all += (all.empty() ? "" : "; ") + p;
  if (!all.empty()) throw std::invalid_argument(all);
  return s;
}

}  // namespace server
