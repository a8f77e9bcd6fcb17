// Forks: a run that starts from another run's checkpoint (training.fork_from) and goes on with
// changed settings: a cooldown branched off a stable phase, another lr from a step on. It takes
// the parent's step, weights, optimizer state and curve so far, so a fork that changes nothing
// continues bit-identically to its parent (tests/integration/training_test.cpp).
// What it may change: the schedule, the optimizer's hyperparameters (lr, betas, weight decay,
// Muon's settings), training.max_steps / max_tokens, grad_clip and the evaluation settings.
// What it may not (frozen): the seed, the model (shape, parametrization, precision), the data
// (dataset, tokenizer), training.batch_tokens and micro_batch (which batches a step reads) and
// optimizer.name (the optimizer state's layout: a fork that starts a new optimizer from fresh
// state is not offered yet).
#pragma once

#include <string>
#include <vector>

#include "trainer_core/config/train_config.h"

namespace trainer_core {

// Each frozen setting where the fork's resume identity differs from its parent's, at its dotted
// path ("model.hidden: the parent has 32, this fork 64; a fork may not change it"); empty: the
// fork may start. Both are resume identities (trainer.cpp), the parent's as its checkpoint
// stores it. The trainer throws them as a ConfigError (exit code 2).
std::vector<ConfigProblem> fork_refusals(const std::string& parent_identity,
                                         const std::string& fork_identity);

}  // namespace trainer_core
