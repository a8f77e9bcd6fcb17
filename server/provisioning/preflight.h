// What `coordinator --check` verifies of a provisioner from this host before any sweep waits on
// it. settings_problems (settings.h) checks the flags alone; this runs the engine's own commands:
//  - Slurm: the batch script is a file sbatch accepts (it starts with "#!": sbatch reads the
//    script, so it need not be executable); the worker binary resolves here (a path: an
//    executable file; a name: on this host's PATH. A site whose login node lacks it names the
//    shared path the nodes use); and `sbatch --test-only` accepts an allocation's shape
//    (partition, account, QoS, time limit, GPUs) without queueing anything.
//  - Kubernetes: the Job manifest renders from the settings and the pod template.
// The probe (--provision-probe, opt-in) goes one step further on Slurm: it queues one short
// allocation that runs `worker --check` with the flags and token file real allocations get, waits
// for it, and reports its state and output: proof that a node starts the worker binary, reads the
// token file and has the backend. (It does not dial the coordinator: --check serves nothing.)
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "server/provisioning/settings.h"

namespace server {

// Every problem found, each naming the flag to change; empty: nothing found.
std::vector<std::string> preflight_problems(const ProvisionerSettings& settings);

struct ProbeResult {
  bool ok = false;
  std::string summary;  // one line: the job's id and state, or why it never ran
  std::string output;   // the job's output (its last lines)
};
ProbeResult probe_allocation(const ProvisionerSettings& settings, std::chrono::seconds timeout);

}  // namespace server
