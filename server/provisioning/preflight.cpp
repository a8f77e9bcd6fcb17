#include "server/provisioning/preflight.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "server/provisioning/command.h"
#include "server/provisioning/flags.h"
#include "server/provisioning/kubernetes_engine.h"
#include "server/provisioning/slurm_engine.h"

namespace server {

namespace fs = std::filesystem;

namespace {
constexpr std::chrono::seconds kCommandTimeout{30};

// An allocation of the configured shape, as the checks and the probe ask for it.
AllocationRow sample_allocation(const ProvisionerSettings& s, const std::string& name) {
  return shaped_allocation(s.limits.shape, engine_kind_name(s.engine), name);
}

// A path as given, or a bare name looked up on this process's PATH.
bool resolves_here(const std::string& binary) {
  if (binary.find('/') != std::string::npos) return is_executable_file(binary);
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');)
    if (!dir.empty() && is_executable_file(fs::path(dir) / binary)) return true;
  return false;
}

void check_slurm(const ProvisionerSettings& s, std::vector<std::string>& problems) {
  std::ifstream script(s.slurm.script);
  std::string first_line;
  std::getline(script, first_line);
  if (!script && first_line.empty())
    problems.push_back("--provision-slurm-script: cannot read '" + s.slurm.script + "'");
  else if (first_line.rfind("#!", 0) != 0)
    problems.push_back("--provision-slurm-script: '" + s.slurm.script +
                       "' does not start with #! (sbatch refuses a script without one)");
  if (!resolves_here(s.slurm.worker_binary))
    problems.push_back(
        "--provision-worker-binary: the worker '" + s.slurm.worker_binary + "' (from " +
        (s.slurm.worker_binary_source.empty() ? "the settings" : s.slurm.worker_binary_source) +
        ") " +
        (s.slurm.worker_binary.find('/') != std::string::npos ? "is no executable file on this host"
                                                              : "is not on this host's PATH") +
        "; name the worker's full path on a filesystem the nodes share (docs/deploy.md, "
        "\"Which worker binary\")");
  auto argv = sbatch_argv(s, sample_allocation(s, "sweep-check"));
  argv.insert(argv.begin() + 1, "--test-only");
  try {
    const CommandResult r =
        run_command(argv, environment_without({"SWEEP_TOKEN"}), "", kCommandTimeout);
    if (r.exit_code != 0)
      problems.push_back(
          "--provision-partition/--provision-account/--provision-qos/--provision-time-limit/"
          "--provision-sbatch-arg: sbatch --test-only refused the allocation's shape: " +
          r.describe());
  } catch (const std::exception& e) {
    problems.push_back(
        "--provisioner slurm: cannot run sbatch here (" + std::string(e.what()) +
        "); the coordinator runs Slurm's commands itself: start it on a host that has them");
  }
}

void check_kubernetes(const ProvisionerSettings& s, std::vector<std::string>& problems) {
  try {
    const KubernetesEngine engine(s);
    const nlohmann::json job =
        engine.render_job(sample_allocation(s, "sweep-check-0"), "sweep-check-");
    if (!job.contains("spec") || !job["spec"].contains("template"))
      problems.push_back("--provision-k8s-pod-template: the Job rendered without a pod template");
  } catch (const std::exception& e) {
    problems.push_back(std::string("the Kubernetes Job does not render: ") + e.what());
  }
}
}  // namespace

std::vector<std::string> preflight_problems(const ProvisionerSettings& settings) {
  std::vector<std::string> problems;
  if (settings.engine == EngineKind::kSlurm) check_slurm(settings, problems);
  if (settings.engine == EngineKind::kKubernetes) check_kubernetes(settings, problems);
  return problems;
}

ProbeResult probe_allocation(const ProvisionerSettings& settings, std::chrono::seconds timeout) {
  if (settings.engine != EngineKind::kSlurm)
    return {false,
            "--provision-probe: only Slurm has a probe so far (Kubernetes: run "
            "`kubectl run` with the worker image and --check by hand)",
            ""};
  SlurmEngine engine(settings);  // writes the token file the probe's worker reads
  const std::string name = "sweep-probe-" + std::to_string(::getpid());
  const AllocationRow probe = sample_allocation(settings, name);
  std::string id;
  try {
    id = engine.submit_with(probe, {{"SWEEP_WORKER_CHECK", "1"}});
  } catch (const std::exception& e) {
    return {false, e.what(), ""};
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const std::optional<EngineView> view = engine.find(id);
    if (view && !is_open(view->state)) {
      ProbeResult r;
      r.ok = view->state == AllocationState::kEnded && view->reason == "COMPLETED";
      r.summary = "probe " + name + " (Slurm job " + id + "): " + view->reason;
      r.output = engine.failure_output(probe, id);
      return r;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      engine.cancel(id);
      return {false,
              "probe " + name + " (Slurm job " + id + ") did not end within " +
                  std::to_string(timeout.count()) +
                  " s: " + (view ? view->reason : std::string("not found")) + " (cancelled)",
              ""};
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

}  // namespace server
