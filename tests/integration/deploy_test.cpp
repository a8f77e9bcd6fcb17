// The deployment files, checked the way a cluster would use them: Kubernetes manifests parsed and
// cross-checked (Secrets, volumes, ports, probe paths) with every container's arguments run
// through the real binaries in --check mode; the systemd units started as systemd would start
// them (their ExecStart and environment files) on 127.0.0.1 to run a sweep; the Slurm script run
// with a stand-in srun and stopped with SIGTERM, as at a time limit.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "process.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test_process::ChildProcess;

namespace {

const fs::path kDeploy = fs::path(SOURCE_DIR) / "deploy";

std::string binary_for(const std::string& command) {
  const std::string name = fs::path(command).filename().string();
  if (name == "coordinator") return COORDINATOR_BINARY;
  if (name == "worker") return WORKER_BINARY;
  ADD_FAILURE() << "unknown binary in a manifest: " << command;
  return "";
}

TEST(Deploy, KubernetesManifestsAreConsistentAndTheirArgumentsAccepted) {
  const YAML::Node kustomization = YAML::LoadFile((kDeploy / "k8s/kustomization.yaml").string());
  std::vector<YAML::Node> docs;
  for (const auto& r : kustomization["resources"]) {
    const fs::path file = kDeploy / "k8s" / r.as<std::string>();
    ASSERT_TRUE(fs::exists(file)) << file;
    for (const auto& d : YAML::LoadAllFromFile(file.string())) docs.push_back(d);
  }
  std::map<std::string, std::map<std::string, std::string>> secrets;  // name -> key -> value
  std::set<std::string> claims;
  for (const auto& d : docs) {
    const std::string kind = d["kind"].as<std::string>();
    if (kind == "Secret")
      for (const auto& kv : d["stringData"])
        secrets[d["metadata"]["name"].as<std::string>()][kv.first.as<std::string>()] =
            kv.second.as<std::string>();
    if (kind == "PersistentVolumeClaim") claims.insert(d["metadata"]["name"].as<std::string>());
  }
  std::map<std::string, std::set<std::string>> pod_port_names;  // app label -> port names
  int workloads = 0;
  for (const auto& d : docs) {
    const std::string kind = d["kind"].as<std::string>();
    if (kind != "StatefulSet" && kind != "DaemonSet" && kind != "Deployment") continue;
    ++workloads;
    const YAML::Node pod = d["spec"]["template"];
    const std::string app = pod["metadata"]["labels"]["app"].as<std::string>();
    EXPECT_EQ(d["spec"]["selector"]["matchLabels"]["app"].as<std::string>(), app);
    std::set<std::string> volumes;
    for (const auto& v : pod["spec"]["volumes"]) {
      volumes.insert(v["name"].as<std::string>());
      if (v["persistentVolumeClaim"]) {
        EXPECT_TRUE(claims.count(v["persistentVolumeClaim"]["claimName"].as<std::string>()))
            << "missing PVC";
      }
    }
    for (const auto& t : d["spec"]["volumeClaimTemplates"])
      volumes.insert(t["metadata"]["name"].as<std::string>());
    for (const auto& c : pod["spec"]["containers"]) {
      std::map<std::string, std::string> env;  // the container's environment
      for (const auto& e : c["env"]) {
        const std::string name = e["name"].as<std::string>();
        if (e["valueFrom"]["secretKeyRef"]) {
          const std::string secret = e["valueFrom"]["secretKeyRef"]["name"].as<std::string>();
          const std::string key = e["valueFrom"]["secretKeyRef"]["key"].as<std::string>();
          ASSERT_TRUE(secrets.count(secret) && secrets[secret].count(key))
              << "missing Secret " << secret << "/" << key;
          env[name] = secrets[secret][key];
        } else {
          env[name] = "test-node";  // fieldRef values such as spec.nodeName
        }
      }
      for (const auto& m : c["volumeMounts"])
        EXPECT_TRUE(volumes.count(m["name"].as<std::string>())) << m["name"];
      std::set<std::string> port_names;
      std::set<int> port_numbers;
      for (const auto& p : c["ports"]) {
        if (p["name"]) port_names.insert(p["name"].as<std::string>());
        port_numbers.insert(p["containerPort"].as<int>());
      }
      pod_port_names[app].insert(port_names.begin(), port_names.end());
      for (const char* probe : {"readinessProbe", "livenessProbe"}) {
        const YAML::Node pr = c[probe];
        ASSERT_TRUE(pr) << app << " has no " << probe;
        if (pr["httpGet"]) {
          const std::string path = pr["httpGet"]["path"].as<std::string>();
          EXPECT_TRUE(path == "/healthz" || path == "/readyz") << path;
          EXPECT_TRUE(port_names.count(pr["httpGet"]["port"].as<std::string>()))
              << app << " " << probe;
        } else {
          EXPECT_TRUE(port_numbers.count(pr["grpc"]["port"].as<int>())) << app << " " << probe;
        }
      }
      // The container's arguments, through the real binary.
      std::vector<std::string> argv = {binary_for(c["command"][0].as<std::string>())};
      for (const auto& a : c["args"]) {
        std::string arg = a.as<std::string>();
        for (const auto& [k, v] : env)
          arg = std::regex_replace(arg, std::regex("\\$\\(" + k + "\\)"), v);
        argv.push_back(arg);
      }
      argv.push_back("--check");
      const auto [code, out] = test_process::run_command(argv, {env.begin(), env.end()});
      EXPECT_EQ(code, 0) << app << ": " << out;
    }
  }
  EXPECT_EQ(workloads, 2);
  for (const auto& d : docs) {
    if (d["kind"].as<std::string>() != "Service") continue;
    for (const auto& p : d["spec"]["ports"]) {
      EXPECT_TRUE(pod_port_names[d["spec"]["selector"]["app"].as<std::string>()].count(
          p["targetPort"].as<std::string>()))
          << "Service port " << p["name"];
    }
  }
}

// ExecStart of a unit with ${VAR} expanded from `env`, binaries and state paths mapped here.
std::vector<std::string> exec_start(const std::string& unit,
                                    const std::map<std::string, std::string>& env,
                                    const fs::path& state, std::string* text_out = nullptr) {
  const std::string text = test_process::read_text((kDeploy / "systemd" / unit).string());
  if (text_out) *text_out = text;
  std::smatch m;
  EXPECT_TRUE(std::regex_search(text, m, std::regex("ExecStart=([^\\n]+)")));
  std::istringstream words(m[1].str());
  std::vector<std::string> argv;
  for (std::string w; words >> w;) {
    for (const auto& [k, v] : env) w = std::regex_replace(w, std::regex("\\$\\{" + k + "\\}"), v);
    w = std::regex_replace(w, std::regex("^/var/lib/"), state.string() + "/");
    if (argv.empty()) w = binary_for(w);
    argv.push_back(w);
  }
  return argv;
}

std::map<std::string, std::string> env_file(const std::string& name) {
  std::map<std::string, std::string> env;
  std::istringstream in(test_process::read_text((kDeploy / "systemd" / name).string()));
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] != '#' && line.find('=') != std::string::npos)
      env[line.substr(0, line.find('='))] = line.substr(line.find('=') + 1);
  return env;
}

TEST(Deploy, SystemdUnitsRunASweepOnLoopback) {
  const fs::path state = fs::temp_directory_path() / ("deploy_systemd_" + std::to_string(getpid()));
  fs::remove_all(state);
  fs::create_directories(state / "sweep");
  fs::create_directories(state / "sweep-worker");
  const int port = test_process::free_port();
  const std::string token = "unit-test-token-0123456789";
  auto coord_env = env_file("coordinator.env.example");
  coord_env["SWEEP_LISTEN"] = "127.0.0.1:" + std::to_string(port);
  coord_env["SWEEP_HTTP"] = "127.0.0.1:0";
  coord_env["SWEEP_TOKEN"] = token;
  coord_env["SWEEP_CHECKPOINTS"] = (state / "checkpoints").string();
  auto worker_env = env_file("worker.env.example");
  worker_env["SWEEP_COORDINATOR"] = "127.0.0.1:" + std::to_string(port);
  worker_env["SWEEP_TOKEN"] = token;
  worker_env["SWEEP_SLOTS"] = "2";
  std::string unit_text;
  const auto coord_argv = exec_start("sweep-coordinator.service", coord_env, state, &unit_text);
  for (const char* line :
       {"Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict", "EnvironmentFile="})
    EXPECT_NE(unit_text.find(line), std::string::npos) << line;
  const auto worker_argv = exec_start("sweep-worker.service", worker_env, state, &unit_text);
  EXPECT_NE(unit_text.find("TimeoutStopSec="), std::string::npos);

  // systemd passes the EnvironmentFile as the environment: the token reaches the binaries there.
  setenv("SWEEP_TOKEN", token.c_str(), 1);
  ChildProcess coordinator(coord_argv, (state / "coordinator.log").string());
  ChildProcess worker(worker_argv, (state / "worker.log").string());
  const std::string sweep = (state / "sweep.yaml").string();
  std::ofstream(sweep) << "name: systemd\nbase:\n  model: {preset: micro}\n"
                          "  training: {max_steps: 20, batch_tokens: 256, micro_batch: 8, "
                          "eval_every: 10, eval_tokens: 1024}\n"
                          "  data: {corpus: gcide, max_corpus_bytes: 500000, cache_dir: " +
                              (state / "cache").string() +
                              "}\n"
                              "seeds: [1, 2]\n";
  std::this_thread::sleep_for(1s);
  const auto [code, out] =
      test_process::run_command({SWEEPCTL_BINARY, "--coordinator",
                                 "127.0.0.1:" + std::to_string(port), "submit", sweep, "--watch"},
                                {{"SWEEP_TOKEN", token}});
  unsetenv("SWEEP_TOKEN");
  EXPECT_EQ(code, 0) << out << test_process::read_text((state / "coordinator.log").string())
                     << test_process::read_text((state / "worker.log").string());
  EXPECT_NE(out.find("2 SUCCEEDED"), std::string::npos) << out;
  fs::remove_all(state);
}

TEST(Deploy, SlurmScriptStartsAWorkerAndHandsJobsBackAtTheTimeLimit) {
  const fs::path dir = fs::temp_directory_path() / ("deploy_slurm_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "bin");
  const auto [syntax, syntax_out] =
      test_process::run_command({"bash", "-n", (kDeploy / "slurm/sweep-workers.sbatch").string()});
  ASSERT_EQ(syntax, 0) << syntax_out;
  // Stand-in srun: drops its own options and runs the task once, as on a one-node allocation.
  std::ofstream(dir / "bin/srun")
      << "#!/bin/sh\nwhile [ \"${1#--}\" != \"$1\" ]; do shift; done\nexec \"$@\"\n";
  fs::permissions(dir / "bin/srun", fs::perms::owner_all);
  const int port = test_process::free_port();
  ChildProcess coordinator({COORDINATOR_BINARY, "--listen", "127.0.0.1:" + std::to_string(port),
                            "--http", "127.0.0.1:0", "--db", (dir / "s.db").string()},
                           (dir / "coordinator.log").string());
  setenv("PATH", ((dir / "bin").string() + ":" + std::getenv("PATH")).c_str(), 1);
  setenv("SWEEP_COORDINATOR", ("127.0.0.1:" + std::to_string(port)).c_str(), 1);
  setenv("SWEEP_TOKEN", "", 1);
  setenv("SWEEP_WORKER_BINARY", WORKER_BINARY, 1);
  setenv("SLURM_JOB_ID", "42", 1);
  setenv("SLURM_GPUS_ON_NODE", "1", 1);
  setenv("TMPDIR", dir.c_str(), 1);
  ChildProcess script({"/bin/bash", (kDeploy / "slurm/sweep-workers.sbatch").string()},
                      (dir / "script.log").string());
  // The worker registers, then the "time limit" signal arrives: everything exits cleanly.
  ASSERT_TRUE(test_process::wait_until(
      [&] {
        return test_process::read_text((dir / "script.log").string()).find("registered") !=
               std::string::npos;
      },
      30s))
      << test_process::read_text((dir / "script.log").string());
  script.kill(SIGTERM);
  const auto status = script.wait_for_exit(30s);
  ASSERT_TRUE(status) << "the script did not stop on SIGTERM";
  EXPECT_NE(test_process::read_text((dir / "script.log").string()).find("shutting down"),
            std::string::npos)
      << test_process::read_text((dir / "script.log").string());
  for (const char* v : {"SWEEP_COORDINATOR", "SWEEP_TOKEN", "SWEEP_WORKER_BINARY", "SLURM_JOB_ID",
                        "SLURM_GPUS_ON_NODE", "TMPDIR"})
    unsetenv(v);
  fs::remove_all(dir);
}

}  // namespace
