#include "trainer_core/train/reuse.h"

namespace trainer_core {

namespace {
std::string short_hash(const std::string& h) { return h.empty() ? "(none)" : h.substr(0, 12); }
}  // namespace

std::vector<std::string> reuse_mismatches(const ReusableRunConfig& offer,
                                          const DatasetProvenance& data,
                                          const TrainerIdentity& trainer) {
  std::vector<std::string> why;
  if (offer.job <= 0) return {"no finished run was offered"};
  // An empty id names no data: shards without a manifest cannot be told apart, so never match.
  if (data.id.empty() || data.id != offer.dataset_id)
    why.push_back("the dataset differs: job " + std::to_string(offer.job) + " trained on " +
                  short_hash(offer.dataset_id) + ", this run loads " + short_hash(data.id));
  // The binary's hash decides (a build of uncommitted changes included: same bytes, same
  // code); the commit and the dirty flag are compared too, so that the refusal says which differs.
  if (trainer.commit != offer.trainer_commit || trainer.dirty != offer.trainer_dirty)
    why.push_back("the trainer's source differs: job " + std::to_string(offer.job) + " ran " +
                  short_hash(offer.trainer_commit) + (offer.trainer_dirty ? " (dirty)" : "") +
                  ", this is " + short_hash(trainer.commit) + (trainer.dirty ? " (dirty)" : ""));
  if (trainer.binary_sha256.empty() || trainer.binary_sha256 != offer.trainer_binary_sha256)
    why.push_back("the trainer binary differs: job " + std::to_string(offer.job) + " ran " +
                  short_hash(offer.trainer_binary_sha256) + ", this is " +
                  short_hash(trainer.binary_sha256));
  return why;
}

RunSummary reused_run_summary(const ReusableRunConfig& offer, const DatasetProvenance& data,
                              const TrainerIdentity& trainer) {
  RunSummary s;
  s.outcome = RunOutcome::kSucceeded;
  s.reused_from_job = offer.job;
  s.message = "reused job " + std::to_string(offer.job) + ": same config, dataset " +
              short_hash(data.id) + " and trainer " + short_hash(trainer.commit);
  s.dataset_id = data.id;
  s.dataset_source = data.source;
  s.dataset_val = data.val;
  s.dataset_manifest = data.manifest;
  s.trainer_commit = trainer.commit;
  s.trainer_dirty = trainer.dirty;
  s.trainer_binary_sha256 = trainer.binary_sha256;
  return s;
}

}  // namespace trainer_core
