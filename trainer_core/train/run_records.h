// The run-record contract: what a training process tells whoever runs it, as JSON lines on a
// file or pipe, one record per line (docs/run-records.md has the fields). One writer and one
// parser: the trainer command and the worker's job process write with RunRecordWriter; the
// worker reads with parse_run_record; an external trainer writes the same lines.
//   {"type":"start","version":1,"start_step":0,"max_steps":1000}
//   {"type":"step","step":1,"train_loss":3.2,"lr":0.003,"grad_norm":1.1,"tokens":524288,
//    "elapsed_s":0.21,"loss_spike":false,"replayed":false,"metrics":{"moe/balance_loss":0.01}}
//   {"type":"eval","step":100,"val_loss":3.1,"val_ppl":22.2,"tokens":52428800,"elapsed_s":20.5}
//   {"type":"checkpoint","step":100,"path":"/ckpt/checkpoint.bin"}
//   {"type":"summary","status":"succeeded","message":"", ...the RunSummary's fields}
// Non-finite numbers are written as null and read back as NaN. A reader skips record types it
// does not know (a later version's), and refuses a known record with a wrong field.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>

#include "trainer_core/train/observer.h"

namespace trainer_core {

constexpr int kRunRecordVersion = 1;
// Named metrics: at most this many distinct names in a run, each 1..kMaxMetricNameBytes bytes.
constexpr size_t kMaxMetricNames = 1000;
constexpr size_t kMaxMetricNameBytes = 200;
// Whether a name is one of a step's fixed fields (train_loss, lr, grad_norm, tokens, elapsed_s),
// which a named metric may not take.
bool is_fixed_field(std::string_view name);

struct StartRecord {
  int version = kRunRecordVersion;
  int64_t start_step = 0;  // > 0: resumed from a checkpoint at this step
  int64_t max_steps = 0;
};
struct CheckpointRecord {
  int64_t step = 0;
  std::string path;
};
// The summary, typed; `fields` is the whole record as written, which the service stores.
struct SummaryRecord {
  RunOutcome outcome = RunOutcome::kSucceeded;
  std::string message;
  RunSummary summary;
  nlohmann::json fields;
};
using RunRecord =
    std::variant<StartRecord, StepMetrics, EvalMetrics, CheckpointRecord, SummaryRecord>;

struct RunRecordError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

nlohmann::json to_json(const StepMetrics& m);
nlohmann::json to_json(const EvalMetrics& m);
nlohmann::json to_json(const RunSummary& s);

// One line: its record; nullopt for a record type this version does not know. Throws
// RunRecordError naming the field for a malformed line.
std::optional<RunRecord> parse_run_record(std::string_view line);
// A summary record's fields as the RunSummary to_json wrote (fields it lacks keep their
// defaults: summaries of older versions have fewer). Throws RunRecordError naming a wrong field.
RunSummary summary_from_json(const nlohmann::json& record);

// Writes every record as one line and flushes it, so a reader streams them as they come.
class RunRecordWriter : public TrainObserver {
 public:
  explicit RunRecordWriter(std::FILE* out) : out_(out) {}
  void on_start(const RunInfo& info) override;
  void on_step(const StepMetrics& m) override;
  void on_eval(const EvalMetrics& m) override;
  void on_checkpoint(int64_t step, const std::string& path) override;
  void on_finish(const RunSummary& s) override;

 private:
  void write(const nlohmann::json& record);
  std::FILE* out_;
};

}  // namespace trainer_core
