// Where a run's checkpoints lie in its training.checkpoint_dir: the latest, and those kept at
// branch steps for forks. Apart from checkpoint.h so that the coordinator, which names a fork's
// parent checkpoint at lease time, needs none of the model or backend headers.
#pragma once

#include <cstdint>
#include <string>

namespace trainer_core {

// The latest checkpoint: <dir>/checkpoint.bin.
std::string checkpoint_path(const std::string& dir);
// A checkpoint kept at a step (training.checkpoint_at_steps): <dir>/checkpoint-step-<step>.bin.
std::string kept_checkpoint_path(const std::string& dir, int64_t step);

}  // namespace trainer_core
