// Kubernetes through kubectl: an allocation is a Job (one pod per node of the allocation, each a
// worker that exits 0 when idle, so the Job completes), created with `kubectl create -f -`,
// looked at with `kubectl get jobs -l sweeps/owner=<this coordinator>`, withdrawn with
// `kubectl delete job`. The worker's token comes from a Secret mounted as a file (mode 0400);
// the manifest names the Secret, never the token. A pod template file (the worker DaemonSet's
// template, say) may supply node selectors, tolerations and volumes; the provisioner sets the
// worker container's arguments, GPU limit and token mount on it.
#pragma once

#include <nlohmann/json.hpp>

#include "server/provisioning/engine.h"
#include "server/provisioning/settings.h"

namespace server {

class KubernetesEngine final : public ClusterEngine {
 public:
  // Reads the pod template file, if any (a bad one throws, naming the flag).
  explicit KubernetesEngine(const ProvisionerSettings& settings);
  const char* kind() const override { return "kubernetes"; }
  std::string submit(const AllocationRow& allocation) override;
  std::vector<EngineView> list(const std::string& prefix) override;
  std::optional<EngineView> find(const std::string& engine_id) override;
  void cancel(const std::string& engine_id) override;
  // Its pods' phase and container states, their last events and log tails.
  std::string failure_output(const AllocationRow& allocation,
                             const std::string& engine_id) override;

  // The Job manifest for an allocation whose names start with `prefix` (tested as rendered).
  nlohmann::json render_job(const AllocationRow& allocation, const std::string& prefix) const;

 private:
  ProvisionerSettings settings_;
  nlohmann::json pod_template_;  // {"metadata": ..., "spec": ...}; empty object when none
};

// A Job's status as an allocation state.
EngineView kubernetes_view(const nlohmann::json& job);

// One pod's phase, scheduling and container states (waiting or terminated, with reasons and exit
// codes) as lines; and the last `last` events of `kubectl get events -o json`, oldest first.
std::string pod_status_words(const nlohmann::json& pod);
std::string event_words(const nlohmann::json& events, int last);

// YAML (a pod template) as JSON: plain scalars that read as integers, booleans or null become
// those; quoted ones stay strings.
nlohmann::json yaml_text_to_json(const std::string& text);

}  // namespace server
