// Slurm through its commands: sbatch asks (the worker script, with the allocation's name, shape,
// time limit and the site's partition/account/QoS), squeue and sacct (or scontrol without
// accounting) look, scancel withdraws. The worker's token reaches the job as a file of mode 0600
// in the state directory (a filesystem the nodes share), named by SWEEP_TOKEN_FILE: it is never
// on a command line, in the job's environment or in its output.
#pragma once

#include "server/provisioning/engine.h"
#include "server/provisioning/settings.h"

namespace server {

class SlurmEngine final : public ClusterEngine {
 public:
  // Writes the token file into settings.state_dir.
  explicit SlurmEngine(const ProvisionerSettings& settings);
  const char* kind() const override { return "slurm"; }
  std::string submit(const AllocationRow& allocation) override;
  std::vector<EngineView> list(const std::string& prefix) override;
  std::optional<EngineView> find(const std::string& engine_id) override;
  void cancel(const std::string& engine_id) override;

  // The sbatch command line for an allocation (no secrets: tested as it is).
  std::vector<std::string> sbatch_argv(const AllocationRow& allocation) const;

 private:
  ProvisionerSettings settings_;
  std::string token_file_;
};

// A Slurm job state as an allocation state, with the reason shown ("TIMEOUT" ends as asked: the
// workers hand their jobs back at the time limit's signal).
EngineView slurm_view(const std::string& name, const std::string& id, const std::string& state,
                      const std::string& reason);

}  // namespace server
