// Slurm through its commands: sbatch asks (the worker script, with the allocation's name, shape,
// time limit and the site's partition/account/QoS), squeue and sacct (or scontrol without
// accounting) look, scancel withdraws. The worker's token reaches the job as a file of mode 0600
// in the state directory (a filesystem the nodes share), named by SWEEP_TOKEN_FILE: it is never
// on a command line, in the job's environment or in its output.
#pragma once

#include <filesystem>
#include <map>

#include "server/provisioning/engine.h"
#include "server/provisioning/settings.h"

namespace server {

class SlurmEngine final : public ClusterEngine {
 public:
  // Writes the token file into settings.state_dir.
  explicit SlurmEngine(const ProvisionerSettings& settings);
  const char* kind() const override { return "slurm"; }
  std::string submit(const AllocationRow& allocation) override;
  // submit() with more variables for the script (the probe's SWEEP_WORKER_CHECK=1).
  std::string submit_with(const AllocationRow& allocation,
                          const std::map<std::string, std::string>& more_environment);
  std::vector<EngineView> list(const std::string& prefix) override;
  std::optional<EngineView> find(const std::string& engine_id) override;
  void cancel(const std::string& engine_id) override;
  // The last lines of <state dir>/<name>-<job id>.out (the job's output and slurmstepd's errors).
  std::string failure_output(const AllocationRow& allocation,
                             const std::string& engine_id) override;

 private:
  ProvisionerSettings settings_;
  std::string token_file_;
};

// Where an allocation's job writes its output: <state dir>/<name>-<job>.out, `job` being Slurm's
// id (or "%j", as sbatch's --output takes it).
std::filesystem::path slurm_output_path(const ProvisionerSettings& settings,
                                        const std::string& allocation, const std::string& job);

// The sbatch command line for an allocation (no secrets: tested as it is).
std::vector<std::string> sbatch_argv(const ProvisionerSettings& settings,
                                     const AllocationRow& allocation);

// A Slurm job state as an allocation state, with the reason shown ("TIMEOUT" ends as asked: the
// workers hand their jobs back at the time limit's signal).
EngineView slurm_view(const std::string& name, const std::string& id, const std::string& state,
                      const std::string& reason);

}  // namespace server
