// How a training process ends: the run's outcome (the summary's "status") and the exit code, one
// list for the trainer command, the worker's job process and the worker that reads the code back.
#pragma once

#include <functional>
#include <optional>
#include <string_view>

namespace trainer_core {

enum ExitCode : int {
  kExitSucceeded = 0,
  kExitError = 1,        // a runtime error: retried by the service up to max_attempts
  kExitBadConfig = 2,    // a bad config or flag
  kExitDiverged = 3,     // NaN/inf loss or gradient: a result, not retried
  kExitOutOfMemory = 4,  // host or device memory exhausted: retrying the same config cannot help
  kExitStopped = 130,    // SIGINT/SIGTERM, after a checkpoint when checkpoints are on
};

// How a run that did not fail ended.
enum class RunOutcome { kSucceeded, kDiverged, kStopped };

const char* outcome_name(RunOutcome outcome);  // "succeeded" | "diverged" | "stopped"
std::optional<RunOutcome> parse_outcome(std::string_view name);
ExitCode exit_code_of(RunOutcome outcome);

// Runs `body` and returns its exit code; what it throws becomes the code of its failure class
// (a ConfigError, OutOfMemory, anything else), with the reason printed to stderr.
int exit_code_of(const std::function<int()>& body);

}  // namespace trainer_core
