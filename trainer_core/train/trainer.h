// The training loop: schedule, gradient accumulation, clipping, optimizer, evals, metrics,
// checkpoints, divergence. Reports through a TrainObserver and never prints.
#pragma once

#include <atomic>
#include <memory>
#include <optional>

#include "trainer_core/backend/backend.h"
#include "trainer_core/config/train_config.h"
#include "trainer_core/data/token_dataset.h"
#include "trainer_core/model/generator.h"
#include "trainer_core/train/observer.h"

namespace trainer_core {

class Trainer {
 public:
  // Loads (or tokenizes and caches) the dataset named by config.data unless one is given.
  Trainer(const TrainConfig& config, TrainObserver* observer,
          std::optional<TokenDataset> dataset = std::nullopt);
  ~Trainer();

  // Runs to max_steps, resuming from checkpoint_dir when it holds a checkpoint of this config.
  // Setting *stop makes it checkpoint (when a checkpoint_dir is set) and return "stopped".
  RunSummary run(const std::atomic<bool>* stop = nullptr);

  // Greedy continuation of `prompt` (text, tokenized with the config's tokenizer) by `tokens`
  // tokens, from the checkpoint in training.checkpoint_dir when there is one (else the freshly
  // initialized weights). Returns the generated text.
  std::string generate(const std::string& prompt, int tokens, GenerationStats* stats);

 private:
  struct State;
  struct Run;  // one call of run(), on its stack (trainer.cpp)
  std::unique_ptr<State> state_;
};

}  // namespace trainer_core
