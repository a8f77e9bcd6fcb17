// Checkpoints: weights, optimizer state, step, and everything the metrics need to continue
// (spike windows, eval history, elapsed time). The RNG needs no state: batches depend only on
// (seed, step, rank). Written to a temporary file and renamed, so a crash never leaves half a
// checkpoint.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainer_core/backend/backend.h"
#include "trainer_core/metrics/spike_detector.h"
#include "trainer_core/metrics/target_tracker.h"
#include "trainer_core/model/gpt.h"
#include "trainer_core/optim/optimizer.h"
#include "trainer_core/train/checkpoint_files.h"
#include "trainer_core/train/observer.h"

namespace trainer_core {

struct TrainingProgress {
  int64_t next_step = 0;  // 0-based index of the next optimizer step
  int64_t tokens_seen = 0;
  double elapsed_seconds = 0;
  double train_seconds = 0;
  double last_train_loss = 0;
  std::vector<EvalPoint> evals;
  std::vector<StepMetrics> history;  // every step so far, replayed on resume
  SpikeDetector::State loss_detector, grad_norm_detector;
};

// The identity a checkpoint was written with (what a resume must match); throws when there is no
// checkpoint at `path` or it is not one of this layout.
std::string checkpoint_identity(const std::string& path);

// `identity` is the JSON of the config fields a resume must match; a mismatch is an error.
void save_checkpoint(const std::string& path, const std::string& identity, Gpt& model,
                     Optimizer& optimizer, const TrainingProgress& progress, Backend& backend);
// Returns false when there is no checkpoint at path; throws when one exists but cannot be used.
bool load_checkpoint(const std::string& path, const std::string& identity, Gpt& model,
                     Optimizer& optimizer, TrainingProgress& progress, Backend& backend);

}  // namespace trainer_core
