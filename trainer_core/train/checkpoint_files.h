// Where a run's checkpoints lie in its training.checkpoint_dir: the latest, those kept at branch
// steps for forks, and the requests to keep more. Apart from checkpoint.h so that the coordinator,
// which names a fork's parent checkpoint and asks running parents to keep one, needs none of the
// model or backend headers.
//
// Keep requests (<dir>/keep-steps, one step per line): a fork submitted while its parent trains
// (`sweepctl fork` of a running job) needs a checkpoint at a step the parent's config did not
// list. The coordinator adds the step to this file in the shared checkpoint root, and the
// trainer keeps a checkpoint at every listed step it reaches (it re-reads the file when it
// changes). The file lives beside the checkpoints, so a request outlives restarts of the
// coordinator, the worker and the trainer alike; a new attempt gets the step in its config too.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace trainer_core {

// The latest checkpoint: <dir>/checkpoint.bin.
std::string checkpoint_path(const std::string& dir);
// A checkpoint kept at a step (training.checkpoint_at_steps): <dir>/checkpoint-step-<step>.bin.
std::string kept_checkpoint_path(const std::string& dir, int64_t step);
// The steps of the kept checkpoints in `dir`, ascending (none when it does not exist).
std::vector<int64_t> kept_checkpoint_steps(const std::string& dir);

// Adds `step` to <dir>/keep-steps (creating both), written whole and renamed into place so a
// reader never sees half a file. Safe against concurrent callers of this process.
void request_kept_checkpoint(const std::string& dir, int64_t step);
// The steps <dir>/keep-steps asks for (none when absent; lines that are no step are skipped).
std::vector<int64_t> kept_checkpoint_requests(const std::string& dir);

// A trainer's view of its keep requests: re-reads the file only when it was replaced (each write
// renames a new file into place: another inode, time or size), so asking at every step costs
// one stat.
class KeepRequests {
 public:
  explicit KeepRequests(std::string dir);
  bool wants(int64_t step);

 private:
  std::string dir_, file_;
  std::string seen_;  // inode, modification time and size of the file last read
  std::vector<int64_t> steps_;
};

}  // namespace trainer_core
