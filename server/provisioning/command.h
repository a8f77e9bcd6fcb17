// Runs one engine command (sbatch, squeue, kubectl, ...) as a child process: argv as given (no
// shell), the environment given (the caller leaves secrets out), stdin written from a string,
// stdout and stderr captured up to a bound, and the child killed when it overruns its time.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace server {

struct CommandResult {
  int exit_code = -1;  // the exit status; -1 when it was killed or could not start
  std::string out, err;
  bool timed_out = false;
  std::string describe() const;  // "exit 1: <first line of stderr>" for error messages
};

// `environment`: the child's whole environment (NAME -> value). Output past 4 MiB per stream is
// dropped. Throws std::runtime_error only when the program cannot be started at all.
CommandResult run_command(const std::vector<std::string>& argv,
                          const std::map<std::string, std::string>& environment,
                          const std::string& stdin_text, std::chrono::milliseconds timeout);

// This process's environment without the names given (the coordinator's SWEEP_TOKEN must not
// reach an engine's job environment).
std::map<std::string, std::string> environment_without(const std::vector<std::string>& names);

}  // namespace server
