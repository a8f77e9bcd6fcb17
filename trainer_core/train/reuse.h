// Reuse of a finished run (a sweep with `reuse: true`, docs/sweeps.md): the coordinator offers
// a SUCCEEDED job of the same config and lineage (TrainConfig::reusable_run), chosen by what its
// summary says; the trainer about to train takes it only when the data it has loaded and its own
// identity are that run's, so that reuse never stands in for a run of other data or other code.
// Taken, the run trains nothing and its summary names the job (RunSummary::reused_from_job).
#pragma once

#include <string>
#include <vector>

#include "trainer_core/config/train_config.h"
#include "trainer_core/data/token_dataset.h"
#include "trainer_core/train/observer.h"
#include "trainer_core/util/trainer_identity.h"

namespace trainer_core {

// Why the offered run cannot stand in for this one ("the dataset differs: ..."); empty when it
// can. An offer of job 0 (none) is never taken.
std::vector<std::string> reuse_mismatches(const ReusableRunConfig& offer,
                                          const DatasetProvenance& data,
                                          const TrainerIdentity& trainer);

// The summary of a run that took the offer: succeeded, no step trained, naming the job, the
// data and the trainer (the coordinator replaces it with the job's own summary).
RunSummary reused_run_summary(const ReusableRunConfig& offer, const DatasetProvenance& data,
                              const TrainerIdentity& trainer);

}  // namespace trainer_core
