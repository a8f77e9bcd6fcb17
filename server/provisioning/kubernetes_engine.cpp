#include "server/provisioning/kubernetes_engine.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "server/provisioning/command.h"

namespace server {

using nlohmann::json;

namespace {
constexpr std::chrono::seconds kCommandTimeout{30};
constexpr const char* kOwnerLabel = "sweeps/owner";
constexpr const char* kTokenDir = "/var/run/sweep";

json yaml_to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : node) out[kv.first.as<std::string>()] = yaml_to_json(kv.second);
      return out;
    }
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const auto& item : node) out.push_back(yaml_to_json(item));
      return out;
    }
    case YAML::NodeType::Scalar: {
      const std::string text = node.Scalar();
      if (node.Tag() == "!") return text;  // quoted
      if (text == "true" || text == "false") return text == "true";
      if (text == "null" || text == "~") return nullptr;
      if (!text.empty() && text.find_first_not_of("-0123456789") == std::string::npos &&
          text.find('-', 1) == std::string::npos)
        try {
          return std::stoll(text);
        } catch (const std::exception&) {
        }
      return text;
    }
    default:
      return nullptr;
  }
}

// The owner label's value: the name prefix without its trailing '-' ("sweep-1a2b3c4d").
std::string owner_of(const std::string& prefix) {
  return prefix.empty() || prefix.back() != '-' ? prefix : prefix.substr(0, prefix.size() - 1);
}
}  // namespace

json yaml_text_to_json(const std::string& text) { return yaml_to_json(YAML::Load(text)); }

KubernetesEngine::KubernetesEngine(const ProvisionerSettings& settings)
    : settings_(settings), pod_template_(json::object()) {
  const std::string& path = settings_.kubernetes.pod_template;
  if (path.empty()) return;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("--provision-k8s-pod-template: cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  try {
    pod_template_ = yaml_text_to_json(text.str());
  } catch (const std::exception& e) {
    throw std::runtime_error("--provision-k8s-pod-template " + path + ": " + e.what());
  }
  // A whole DaemonSet, Deployment or Job is accepted too: its pod template is taken.
  if (pod_template_.contains("spec") && pod_template_["spec"].contains("template"))
    pod_template_ = pod_template_["spec"]["template"];
  if (!pod_template_.is_object() || !pod_template_.value("spec", json()).is_object())
    throw std::runtime_error(
        "--provision-k8s-pod-template " + path +
        ": expected a pod template (metadata, spec) or a workload holding one");
}

json KubernetesEngine::render_job(const AllocationRow& a, const std::string& prefix) const {
  const KubernetesSettings& k = settings_.kubernetes;
  json labels = {{"app.kubernetes.io/name", "sweep-worker"},
                 {kOwnerLabel, owner_of(prefix)},
                 {"sweeps/allocation", a.name}};
  json pod = pod_template_;
  pod["metadata"]["labels"].update(labels);
  json& spec = pod["spec"];
  spec["restartPolicy"] = "Never";  // a worker that exits (idle: 0) ends its pod; the Job counts it
  if (!spec.contains("terminationGracePeriodSeconds")) spec["terminationGracePeriodSeconds"] = 120;
  json& containers = spec["containers"];
  if (!containers.is_array() || containers.empty()) containers = json::array({json::object()});
  json* worker = &containers[0];
  for (json& c : containers)
    if (c.value("name", "") == "worker") worker = &c;
  (*worker)["name"] = "worker";
  if (!worker->contains("image")) (*worker)["image"] = k.image;
  if (!worker->contains("command")) (*worker)["command"] = {"/usr/local/bin/worker"};
  (*worker)["args"] = {"--coordinator=" + settings_.coordinator_address,
                       "--backend=" + a.backend,
                       "--slots=" + std::to_string(a.slots_per_node),
                       "--allocation=" + a.name,
                       "--idle-exit-s=" + std::to_string(settings_.idle_timeout_s),
                       "--token-file=" + std::string(kTokenDir) + "/token",
                       "--work-dir=/tmp/sweep-worker",
                       "--health=0.0.0.0:8081"};  // the template's probes, if it has any
  // The token is the Secret's, mounted read-only; nothing of it is in this manifest.
  json env = json::array();
  for (const json& e : worker->value("env", json::array()))
    if (e.value("name", "") != "SWEEP_TOKEN") env.push_back(e);
  (*worker)["env"] = env;
  if (a.gpus_per_node > 0)
    (*worker)["resources"]["limits"]["nvidia.com/gpu"] = a.gpus_per_node;
  else if (worker->contains("resources") && (*worker)["resources"].contains("limits"))
    (*worker)["resources"]["limits"].erase("nvidia.com/gpu");
  json mounts = json::array();
  for (const json& m : worker->value("volumeMounts", json::array()))
    if (m.value("name", "") != "sweep-token") mounts.push_back(m);
  mounts.push_back({{"name", "sweep-token"}, {"mountPath", kTokenDir}, {"readOnly", true}});
  (*worker)["volumeMounts"] = mounts;
  json volumes = json::array();
  for (const json& v : spec.value("volumes", json::array()))
    if (v.value("name", "") != "sweep-token") volumes.push_back(v);
  volumes.push_back({{"name", "sweep-token"},
                     {"secret",
                      {{"secretName", k.token_secret},
                       {"defaultMode", 0400},
                       {"items", {{{"key", "token"}, {"path", "token"}}}}}}});
  spec["volumes"] = volumes;
  return {{"apiVersion", "batch/v1"},
          {"kind", "Job"},
          {"metadata", {{"name", a.name}, {"namespace", k.namespace_name}, {"labels", labels}}},
          {"spec",
           {{"parallelism", a.nodes},
            {"completions", a.nodes},
            {"backoffLimit", 0},  // a failed worker pod is the allocation's failure, shown
            {"ttlSecondsAfterFinished", 3600},
            {"template", pod}}}};
}

EngineView kubernetes_view(const json& job) {
  EngineView v;
  v.name = job["metadata"].value("name", "");
  v.engine_id = v.name;
  const json status = job.value("status", json::object());
  for (const json& c : status.value("conditions", json::array())) {
    if (c.value("status", "") != "True") continue;
    const std::string type = c.value("type", "");
    const std::string why =
        c.value("reason", "") + (c.contains("message") ? ": " + c.value("message", "") : "");
    if (type == "Failed") {
      v.state = AllocationState::kFailed;
      v.reason = why;
      return v;
    }
    if (type == "Complete") {
      v.state = AllocationState::kEnded;
      v.reason = "Complete";
      return v;
    }
  }
  if (status.value("ready", 0) > 0) {
    v.state = AllocationState::kRunning;
  } else {
    v.state = AllocationState::kQueued;
    v.reason = status.value("active", 0) > 0 ? "pods not ready (scheduling, pulling the image)"
                                             : "created";
  }
  return v;
}

std::string KubernetesEngine::submit(const AllocationRow& a) {
  const std::string prefix = a.name.substr(0, a.name.rfind('-') + 1);
  const CommandResult r = run_command(
      {settings_.kubernetes.kubectl, "create", "--filename=-", "--output=name"},
      environment_without({"SWEEP_TOKEN"}), render_job(a, prefix).dump(), kCommandTimeout);
  if (r.exit_code != 0) throw EngineError("kubectl create refused " + a.name + ": " + r.describe());
  return a.name;
}

std::vector<EngineView> KubernetesEngine::list(const std::string& prefix) {
  const CommandResult r = run_command(
      {settings_.kubernetes.kubectl, "get", "jobs",
       "--namespace=" + settings_.kubernetes.namespace_name,
       "--selector=" + std::string(kOwnerLabel) + "=" + owner_of(prefix), "--output=json"},
      environment_without({"SWEEP_TOKEN"}), "", kCommandTimeout);
  if (r.exit_code != 0) throw EngineError("kubectl get jobs: " + r.describe());
  std::vector<EngineView> out;
  for (const json& job : json::parse(r.out).value("items", json::array()))
    out.push_back(kubernetes_view(job));
  return out;
}

std::optional<EngineView> KubernetesEngine::find(const std::string& engine_id) {
  const CommandResult r =
      run_command({settings_.kubernetes.kubectl, "get", "job", engine_id,
                   "--namespace=" + settings_.kubernetes.namespace_name, "--output=json"},
                  environment_without({"SWEEP_TOKEN"}), "", kCommandTimeout);
  if (r.exit_code != 0) return std::nullopt;
  return kubernetes_view(json::parse(r.out));
}

std::string pod_status_words(const json& pod) {
  const json status = pod.value("status", json::object());
  std::string out = "pod " + pod.value("metadata", json::object()).value("name", "?") + ": " +
                    status.value("phase", "no phase");
  if (status.contains("reason"))
    out += " (" + status.value("reason", "") + ": " + status.value("message", "") + ")";
  out += "\n";
  for (const json& c : status.value("conditions", json::array()))
    if (c.value("type", "") == "PodScheduled" && c.value("status", "") == "False")
      out += "  not scheduled: " + c.value("reason", "") + ": " + c.value("message", "") + "\n";
  for (const char* list : {"initContainerStatuses", "containerStatuses"})
    for (const json& c : status.value(list, json::array())) {
      const json state = c.value("state", json::object());
      const std::string name = "  container " + c.value("name", "?");
      if (state.contains("waiting")) {
        const json& w = state["waiting"];
        out += name + " waiting: " + w.value("reason", "") +
               (w.contains("message") ? ": " + w.value("message", "") : "") + "\n";
      } else if (state.contains("terminated")) {
        const json& t = state["terminated"];
        out += name + " terminated: " + t.value("reason", "") + ", exit code " +
               std::to_string(t.value("exitCode", -1)) +
               (t.contains("message") ? ": " + t.value("message", "") : "") + "\n";
      }
    }
  return out;
}

std::string event_words(const json& events, int last) {
  std::vector<json> items;
  for (const json& e : events.value("items", json::array())) items.push_back(e);
  // RFC 3339 times in one zone sort as text; an event without lastTimestamp has eventTime.
  const auto when = [](const json& e) {
    const json t = e.value("lastTimestamp", json());
    return t.is_string() ? t.get<std::string>() : e.value("eventTime", std::string());
  };
  std::stable_sort(items.begin(), items.end(),
                   [&](const json& a, const json& b) { return when(a) < when(b); });
  std::string out;
  for (size_t i = items.size() > size_t(last) ? items.size() - last : 0; i < items.size(); ++i)
    out += "  " + items[i].value("type", "") + " " + items[i].value("reason", "") + ": " +
           items[i].value("message", "") + "\n";
  return out;
}

std::string KubernetesEngine::failure_output(const AllocationRow&, const std::string& engine_id) {
  const KubernetesSettings& k = settings_.kubernetes;
  const auto env = environment_without({"SWEEP_TOKEN"});
  const std::string in_namespace = "--namespace=" + k.namespace_name;
  const CommandResult pods = run_command(
      {k.kubectl, "get", "pods", in_namespace, "--selector=job-name=" + engine_id, "--output=json"},
      env, "", kCommandTimeout);
  if (pods.exit_code != 0) return "kubectl get pods: " + pods.describe();
  json items;
  try {
    items = json::parse(pods.out).value("items", json::array());
  } catch (const std::exception& e) {
    return std::string("kubectl get pods answered no JSON: ") + e.what();
  }
  if (items.empty()) return "no pod of Job " + engine_id + " is left to look at";
  std::string out;
  for (size_t i = 0; i < items.size() && i < 3; ++i) {  // a few pods say it; a Job may have many
    const std::string pod = items[i]["metadata"].value("name", "");
    out += pod_status_words(items[i]);
    const CommandResult events =
        run_command({k.kubectl, "get", "events", in_namespace,
                     "--field-selector=involvedObject.name=" + pod, "--output=json"},
                    env, "", kCommandTimeout);
    if (events.exit_code == 0) try {
        out += event_words(json::parse(events.out), 5);
      } catch (const std::exception&) {
      }
    const CommandResult log =
        run_command({k.kubectl, "logs", in_namespace, pod, "--container=worker", "--tail=20"}, env,
                    "", kCommandTimeout);
    const std::string log_tail = log.exit_code == 0 ? last_lines(log.out, 20) : "";
    if (!log_tail.empty()) out += "  log:\n" + log_tail + "\n";
  }
  return last_lines(out, 80);
}

void KubernetesEngine::cancel(const std::string& engine_id) {
  const CommandResult r = run_command(
      {settings_.kubernetes.kubectl, "delete", "job", engine_id,
       "--namespace=" + settings_.kubernetes.namespace_name, "--ignore-not-found", "--wait=false"},
      environment_without({"SWEEP_TOKEN"}), "", kCommandTimeout);
  if (r.exit_code != 0) throw EngineError("kubectl delete job " + engine_id + ": " + r.describe());
}

}  // namespace server
