// The job side of the worker: `worker run-job --config FILE --metrics-fd N` runs one TrainConfig
// in this (child) process and writes JSON lines to fd N: {"type":"start"}, then "step", "eval",
// "checkpoint" and a final "summary". SIGTERM checkpoints and exits with code 130.
// Exit codes as the trainer command: 0 succeeded, 1 error, 2 bad config, 3 diverged, 130 stopped.
#pragma once

#include <string>

namespace worker {

int run_child_job(const std::string& config_path, int metrics_fd);

}  // namespace worker
