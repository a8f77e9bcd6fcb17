// The job side of the worker: `worker run-job --config FILE --metrics-fd N` runs one TrainConfig
// in this (child) process and writes its run records (trainer_core/train/run_records.h) to fd N.
// SIGTERM checkpoints and exits with code 130; the exit codes are the trainer command's
// (trainer_core/train/exit_codes.h).
#pragma once

#include <string>

namespace worker {

int run_child_job(const std::string& config_path, int metrics_fd);

}  // namespace worker
