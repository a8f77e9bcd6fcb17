#include "server/scheduling/fork_source.h"

#include <algorithm>
#include <filesystem>
#include <stdexcept>
#include <vector>

#include "trainer_core/train/checkpoint_files.h"

namespace server {

namespace fs = std::filesystem;

namespace {

std::string step_text(int64_t step, int64_t batch_tokens) {
  return "step " + std::to_string(step) + " (" + std::to_string(step * batch_tokens) + " tokens)";
}

// "job 7 keeps no checkpoint at step 30 (15360 tokens); its nearest kept: step 20 (...) and
// step 40 (...)", or "...; it keeps none".
std::string no_checkpoint_at(int64_t job_id, const std::vector<int64_t>& kept, int64_t step,
                             int64_t batch_tokens) {
  std::string text =
      "job " + std::to_string(job_id) + " keeps no checkpoint at " + step_text(step, batch_tokens);
  if (kept.empty())
    return text +
           "; it keeps none (only branch points and a finished run's "
           "last step are kept)";
  const auto above = std::upper_bound(kept.begin(), kept.end(), step);
  std::vector<std::string> nearest;
  if (above != kept.begin()) nearest.push_back(step_text(*std::prev(above), batch_tokens));
  if (above != kept.end()) nearest.push_back(step_text(*above, batch_tokens));
  text += "; its nearest kept: " + nearest[0];
  if (nearest.size() > 1) text += " and " + nearest[1];
  return text;
}

// checkpoint.bin of a finished run (written at its last step) as checkpoint-step-<last>.bin.
void keep_last_checkpoint(const std::string& dir, int64_t last_step) {
  const fs::path from = trainer_core::checkpoint_path(dir),
                 to = trainer_core::kept_checkpoint_path(dir, last_step);
  std::error_code ec;
  fs::create_hard_link(from, to, ec);
  if (ec && !fs::exists(to)) fs::copy_file(from, to);  // throws with the path and reason
}

}  // namespace

std::string prepare_fork_start(const std::string& root, const ForkParent& parent,
                               int64_t branch_step) {
  const std::string dir = job_checkpoint_dir(root, parent.sweep_id, parent.job_id);
  std::vector<int64_t> kept = trainer_core::kept_checkpoint_steps(dir);
  if (std::binary_search(kept.begin(), kept.end(), branch_step)) return "";
  // A finished run's latest checkpoint is at its last step, and may be kept there on demand.
  const bool last_keepable = parent.progress == ParentProgress::kSucceeded &&
                             fs::exists(trainer_core::checkpoint_path(dir));
  if (last_keepable && branch_step == parent.step) {
    keep_last_checkpoint(dir, branch_step);
    return "";
  }
  if (parent.progress == ParentProgress::kNotEnded && branch_step > parent.step) {
    trainer_core::request_kept_checkpoint(dir, branch_step);
    return "";
  }
  if (last_keepable) kept.push_back(parent.step);
  std::string why = no_checkpoint_at(parent.job_id, kept, branch_step, parent.batch_tokens);
  if (parent.progress == ParentProgress::kNotEnded)
    why +=
        "; it is at step " + std::to_string(parent.step) + ", so a later step can be asked of it";
  return why;
}

std::string missing_fork_checkpoint(const std::string& root, const LeasedJob& fork,
                                    int64_t batch_tokens) {
  if (!fork.fork || root.empty()) return "";
  const std::string dir = job_checkpoint_dir(root, fork.fork->sweep_id, fork.fork->job_id);
  // A coordinator that does not see the root its workers share cannot tell: the trainer will.
  if (!fs::exists(dir) ||
      fs::exists(trainer_core::kept_checkpoint_path(dir, fork.fork->branch_step)))
    return "";
  return "its parent's checkpoint is missing (the parent passed the branch step before the "
         "request to keep it arrived, or the file was removed): " +
         no_checkpoint_at(fork.fork->job_id, trainer_core::kept_checkpoint_steps(dir),
                          fork.fork->branch_step, batch_tokens);
}

bool keeps_checkpoints_at(const std::string& root, int64_t sweep_id, int64_t job_id,
                          const std::vector<int64_t>& steps) {
  if (steps.empty()) return true;
  if (root.empty()) return false;
  const std::vector<int64_t> kept =
      trainer_core::kept_checkpoint_steps(job_checkpoint_dir(root, sweep_id, job_id));
  return std::all_of(steps.begin(), steps.end(), [&](int64_t step) {
    return std::find(kept.begin(), kept.end(), step) != kept.end();
  });
}

}  // namespace server
