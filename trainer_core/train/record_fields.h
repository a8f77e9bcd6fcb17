// The fields of a training step and of an evaluation, named once for every layer. This table is
// the one place their names are spelled: the run-record writer and parser (run_records.cpp),
// is_fixed_field, the checkpoint's replay history (checkpoint.cpp: the table's order is the
// layout's order), the worker's mapping onto the proto MetricPoint (worker/job_process.cpp, by
// the proto's field names) and the coordinator's series (server/api/worker_service.cpp stores
// each kept field under its name; migrations/005 gives the fixed series their ids). Tests check
// every other spelling against it: the proto's MetricPoint and EvalPoint fields and the
// coordinator's fixed series (tests/unit/record_fields_test.cpp).
//
// One name per field across the run record, the C++ member, the proto field, the stored series
// and the export's metric column. Units: docs/run-records.md.
#pragma once

#include <cstdint>
#include <string_view>
#include <variant>

#include "trainer_core/train/observer.h"

namespace trainer_core {

enum FieldFlags : unsigned {
  kRequired = 1,  // a record without it is refused
  kKept = 2,      // the worker forwards it and the coordinator stores it as a series
};

template <typename Record>
struct RecordField {
  const char* name;
  const char* unit;
  std::variant<int64_t Record::*, double Record::*, bool Record::*> member;
  unsigned flags = 0;
  // A kept flag is no series of its own: it marks the points of this series (a loss spike marks
  // the train_loss point of its step). nullptr for a value.
  const char* flags_series = nullptr;
  bool has(FieldFlags f) const { return (flags & f) != 0; }
};

// Reordering or retyping these changes the checkpoint layout (bump its version there).
inline const RecordField<StepMetrics> kStepFields[] = {
    {"step", "optimizer steps completed, 1-based", &StepMetrics::step, kRequired | kKept},
    {"train_loss", "nats per token (NaN: a diverged step)", &StepMetrics::train_loss,
     kRequired | kKept},
    {"lr", "learning rate", &StepMetrics::lr, kKept},
    {"grad_norm", "global gradient norm before clipping", &StepMetrics::grad_norm, kKept},
    {"loss_zscore", "standard deviations from the recent loss", &StepMetrics::loss_zscore},
    {"grad_norm_zscore", "standard deviations from the recent grad norm",
     &StepMetrics::grad_norm_zscore},
    {"loss_spike", "flag: the spike detector fired", &StepMetrics::loss_spike, kKept, "train_loss"},
    {"tokens_per_second", "tokens per second of this step", &StepMetrics::tokens_per_second},
    {"tokens", "tokens trained so far", &StepMetrics::tokens, kKept},
    {"elapsed_s", "seconds since the run started, wall-clock", &StepMetrics::elapsed_s, kKept},
    {"replayed", "flag: replayed from a checkpoint", &StepMetrics::replayed},
};

inline const RecordField<EvalMetrics> kEvalFields[] = {
    {"step", "optimizer steps completed", &EvalMetrics::step, kRequired | kKept},
    {"val_loss", "nats per token on the validation tokens", &EvalMetrics::val_loss,
     kRequired | kKept},
    {"val_ppl", "exp(val_loss)", &EvalMetrics::val_ppl},
    {"tokens", "tokens trained so far", &EvalMetrics::tokens, kKept},
    {"elapsed_s", "seconds since the run started, wall-clock (NaN: replayed)",
     &EvalMetrics::elapsed_s, kKept},
    {"train_s", "seconds of training, evaluations excluded (NaN: not recorded)",
     &EvalMetrics::train_s, kKept},
    {"replayed", "flag: replayed from a checkpoint", &EvalMetrics::replayed},
};

// A step field the coordinator stores as a series of its own, under its name: kept, not the step
// itself (every point's key), not a flag riding on another series.
inline bool is_kept_series(const RecordField<StepMetrics>& f) {
  return f.has(kKept) && f.flags_series == nullptr && std::string_view(f.name) != "step";
}

}  // namespace trainer_core
