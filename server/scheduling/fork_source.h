// Where a fork of a stored job can start (`sweepctl fork`, server/api/sweep_service.cpp): a
// checkpoint its parent kept at the branch step. The parent's checkpoints lie under the
// coordinator's --checkpoint-root (a filesystem it shares with the workers: docs/deploy.md).
//   - A step the parent kept (checkpoint-step-N.bin) can be forked at once.
//   - The last step of a parent that SUCCEEDED is its latest checkpoint: it is linked (or
//     copied, where the filesystem has no hard links) to checkpoint-step-N.bin, kept from then
//     on like any branch point.
//   - A step ahead of a parent that has not ended is asked of it (checkpoint_files.h's keep
//     requests): the fork waits until the parent passes the step.
//   - Anything else is refused, naming the parent's nearest kept steps.
// A parent that passed the step before its request reached the trainer leaves the fork without
// a checkpoint: that fork fails at lease time with the same naming (missing_fork_checkpoint).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "server/scheduling/job_config.h"

namespace server {

enum class ParentProgress { kNotEnded, kSucceeded, kEndedOtherwise };

struct ForkParent {
  int64_t sweep_id = 0, job_id = 0;
  ParentProgress progress = ParentProgress::kNotEnded;
  int64_t step = 0;          // the last step it reported
  int64_t batch_tokens = 0;  // to name steps in tokens too
};

// Makes the parent's checkpoint at `branch_step` available or asks for it; the refusal when
// neither is possible (empty: the fork may be stored). Throws std::runtime_error when the
// checkpoint root cannot be written.
std::string prepare_fork_start(const std::string& checkpoint_root, const ForkParent& parent,
                               int64_t branch_step);

// Empty when the checkpoint a leased fork starts from exists; else why not, naming the parent's
// nearest kept steps.
std::string missing_fork_checkpoint(const std::string& checkpoint_root, const LeasedJob& fork,
                                    int64_t batch_tokens);

// Whether a job's checkpoint directory keeps a checkpoint at each of `steps` (a finished run
// offered for reuse to a job with forks must hold their branch points).
bool keeps_checkpoints_at(const std::string& checkpoint_root, int64_t sweep_id, int64_t job_id,
                          const std::vector<int64_t>& steps);

}  // namespace server
