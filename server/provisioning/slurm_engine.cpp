#include "server/provisioning/slurm_engine.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "server/provisioning/command.h"

namespace server {

namespace {
constexpr std::chrono::seconds kCommandTimeout{30};

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, sep);) out.push_back(part);
  return out;
}

// The value of "Key=value" in `scontrol -o show job` output (up to the next space).
std::string scontrol_field(const std::string& text, const std::string& key) {
  const auto at = text.find(" " + key + "=");
  if (at == std::string::npos) return "";
  const auto start = at + key.size() + 2;
  return text.substr(start, text.find(' ', start) - start);
}

// Enough of a file's end for last_lines: a worker that logged for hours has a large output file.
constexpr std::streamoff kTailReadBytes = 64 * 1024;
}  // namespace

EngineView slurm_view(const std::string& name, const std::string& id, const std::string& state,
                      const std::string& reason) {
  // sacct adds "by <uid>" to CANCELLED; squeue's reason is "None" when it has none.
  const std::string base = state.substr(0, state.find(' '));
  const std::string why = reason == "None" || reason == "(null)" ? "" : reason;
  EngineView v{name, id, AllocationState::kRunning, why};
  if (base == "PENDING" || base == "REQUEUED" || base == "REQUEUE_HOLD" || base == "REQUEUE_FED" ||
      base == "CONFIGURING") {
    v.state = AllocationState::kQueued;
    v.reason = why.empty() ? base : why;
  } else if (base == "COMPLETED") {
    v.state = AllocationState::kEnded;
    v.reason = "COMPLETED";
  } else if (base == "TIMEOUT") {
    v.state = AllocationState::kEnded;
    v.reason = "TIMEOUT: reached its time limit (its workers handed their jobs back)";
  } else if (base == "CANCELLED" || base == "FAILED" || base == "NODE_FAIL" ||
             base == "BOOT_FAIL" || base == "OUT_OF_MEMORY" || base == "DEADLINE" ||
             base == "PREEMPTED" || base == "REVOKED" || base == "SPECIAL_EXIT") {
    v.state = AllocationState::kFailed;
    v.reason = state + (why.empty() ? "" : ": " + why);
  } else if (base == "COMPLETING") {
    v.reason = "COMPLETING";
  }
  return v;
}

SlurmEngine::SlurmEngine(const ProvisionerSettings& settings) : settings_(settings) {
  std::filesystem::create_directories(settings_.state_dir);
  // Written even when the coordinator has no token (then empty): the script takes it either way.
  token_file_ = (std::filesystem::path(settings_.state_dir) / "worker-token").string();
  // Created 0600 before a byte is written; a file left by an earlier run is made 0600 first.
  const int fd = ::open(token_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || fchmod(fd, 0600) != 0)
    throw std::runtime_error("--provision-dir: cannot write the worker token file " + token_file_);
  const std::string text = settings_.worker_token + "\n";
  const bool ok = ::write(fd, text.data(), text.size()) == ssize_t(text.size());
  ::close(fd);
  if (!ok) throw std::runtime_error("cannot write the worker token file " + token_file_);
  spdlog::info("provisioner: Slurm allocations run the worker {} ({})",
               settings_.slurm.worker_binary,
               settings_.slurm.worker_binary_source.empty() ? "as configured"
                                                            : settings_.slurm.worker_binary_source);
}

std::filesystem::path slurm_output_path(const ProvisionerSettings& settings,
                                        const std::string& allocation, const std::string& job) {
  return std::filesystem::path(settings.state_dir) / (allocation + "-" + job + ".out");
}

std::vector<std::string> sbatch_argv(const ProvisionerSettings& settings, const AllocationRow& a) {
  const SlurmSettings& s = settings.slurm;
  std::vector<std::string> argv = {
      "sbatch",
      "--parsable",
      "--job-name=" + a.name,
      "--nodes=" + std::to_string(a.nodes),
      "--ntasks-per-node=1",
      "--time=" + s.time_limit,
      "--output=" + slurm_output_path(settings, a.name, "%j").string()};
  // The script asks for 8 GPUs by default; the command line decides (CPU workers ask for none).
  argv.push_back(a.gpus_per_node > 0 ? "--gres=gpu:" + std::to_string(a.gpus_per_node)
                                     : "--gres=none");
  if (!s.partition.empty()) argv.push_back("--partition=" + s.partition);
  if (!s.account.empty()) argv.push_back("--account=" + s.account);
  if (!s.qos.empty()) argv.push_back("--qos=" + s.qos);
  argv.insert(argv.end(), s.extra_args.begin(), s.extra_args.end());
  argv.push_back(s.script);
  return argv;
}

std::string SlurmEngine::submit(const AllocationRow& a) { return submit_with(a, {}); }

std::string SlurmEngine::submit_with(const AllocationRow& a,
                                     const std::map<std::string, std::string>& more) {
  // The job inherits this environment (sbatch's default --export=ALL) less the token; what the
  // script needs to start the worker rides in SWEEP_* variables.
  auto env = environment_without({"SWEEP_TOKEN"});
  for (const auto& [name, value] : more) env[name] = value;
  env["SWEEP_COORDINATOR"] = settings_.coordinator_address;
  env["SWEEP_TOKEN_FILE"] = token_file_;
  env["SWEEP_ALLOCATION"] = a.name;
  env["SWEEP_BACKEND"] = a.backend;
  env["SWEEP_SLOTS"] = std::to_string(a.slots_per_node);
  env["SWEEP_IDLE_EXIT_S"] = std::to_string(settings_.idle_timeout_s);
  env["SWEEP_WORKER_BINARY"] = settings_.slurm.worker_binary;
  const CommandResult r = run_command(sbatch_argv(settings_, a), env, "", kCommandTimeout);
  if (r.exit_code != 0) throw EngineError("sbatch refused " + a.name + ": " + r.describe());
  const std::string id = split(r.out, ';').at(0);
  const std::string trimmed = id.substr(0, id.find_first_of("\r\n "));
  if (trimmed.empty() || trimmed.find_first_not_of("0123456789_") != std::string::npos)
    throw EngineError("sbatch answered no job id for " + a.name + ": '" + r.out + "'");
  return trimmed;
}

std::vector<EngineView> SlurmEngine::list(const std::string& prefix) {
  // Every state: squeue keeps ended jobs for MinJobAge (300 s by default).
  const CommandResult r =
      run_command({"squeue", "--me", "--noheader", "--states=all", "--format=%i|%j|%T|%r"},
                  environment_without({"SWEEP_TOKEN"}), "", kCommandTimeout);
  if (r.exit_code != 0) throw EngineError("squeue: " + r.describe());
  std::vector<EngineView> out;
  for (const std::string& line : split(r.out, '\n')) {
    const auto f = split(line, '|');
    if (f.size() < 4 || f[1].rfind(prefix, 0) != 0) continue;
    out.push_back(slurm_view(f[1], f[0], f[2], f[3]));
  }
  return out;
}

std::optional<EngineView> SlurmEngine::find(const std::string& engine_id) {
  const auto env = environment_without({"SWEEP_TOKEN"});
  // Accounting first (it keeps every job); a cluster without it still has scontrol for a while.
  const CommandResult acct = run_command({"sacct", "--noheader", "--allocations", "--parsable2",
                                          "--jobs=" + engine_id, "--format=JobName,State,Reason"},
                                         env, "", kCommandTimeout);
  if (acct.exit_code == 0) {
    for (const std::string& line : split(acct.out, '\n')) {
      const auto f = split(line, '|');
      if (f.size() >= 3) return slurm_view(f[0], engine_id, f[1], f[2]);
    }
  }
  const CommandResult show =
      run_command({"scontrol", "--oneliner", "show", "job", engine_id}, env, "", kCommandTimeout);
  if (show.exit_code != 0) return std::nullopt;
  const std::string text = " " + show.out;
  return slurm_view(scontrol_field(text, "JobName"), engine_id, scontrol_field(text, "JobState"),
                    scontrol_field(text, "Reason"));
}

std::string SlurmEngine::failure_output(const AllocationRow& a, const std::string& engine_id) {
  // sbatch_argv's --output, on a filesystem the nodes share.
  const std::filesystem::path path = slurm_output_path(settings_, a.name, engine_id);
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in)
    return "no output file at " + path.string() +
           " (does this host share --provision-dir with the compute nodes?)";
  const std::streamoff size = in.tellg();
  in.seekg(std::max<std::streamoff>(0, size - kTailReadBytes));
  std::stringstream text;
  text << in.rdbuf();
  const std::string tail = last_lines(text.str(), 20);
  return tail.empty() ? "" : path.filename().string() + ":\n" + tail;
}

void SlurmEngine::cancel(const std::string& engine_id) {
  const CommandResult r = run_command({"scancel", engine_id}, environment_without({"SWEEP_TOKEN"}),
                                      "", kCommandTimeout);
  // An id Slurm no longer has is already gone: nothing left to withdraw.
  if (r.exit_code != 0 && r.err.find("Invalid job id") == std::string::npos)
    throw EngineError("scancel " + engine_id + ": " + r.describe());
}

}  // namespace server
