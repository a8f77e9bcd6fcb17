// How a training process ends, as its exit code: one list for the trainer command, the worker's
// job process and the worker that reads the code back.
#pragma once

namespace trainer_core {

enum ExitCode : int {
  kExitSucceeded = 0,
  kExitError = 1,        // a runtime error: retried by the service up to max_attempts
  kExitBadConfig = 2,    // a bad config or flag
  kExitDiverged = 3,     // NaN/inf loss or gradient: a result, not retried
  kExitOutOfMemory = 4,  // host or device memory exhausted: retrying the same config cannot help
  kExitStopped = 130,    // SIGINT/SIGTERM, after a checkpoint when checkpoints are on
};

}  // namespace trainer_core
