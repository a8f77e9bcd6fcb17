#include "trainer_core/train/run_records.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <variant>

#include "trainer_core/train/record_fields.h"

namespace trainer_core {

using nlohmann::json;

namespace {
// JSON has no NaN/inf: a diverged loss is written as null.
json number(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json named_json(const std::vector<NamedValue>& metrics) {
  json out = json::object();
  for (const NamedValue& v : metrics) out[v.name] = number(v.value);
  return out;
}

json spikes_json(const std::vector<Spike>& spikes) {
  json a = json::array();
  for (const auto& s : spikes)
    a.push_back({{"start_step", s.start_step},
                 {"peak_step", s.peak_step},
                 {"peak", number(s.peak_value)},
                 {"recovery_step", s.recovery_step},
                 {"baseline_mean", number(s.baseline_mean)}});
  return a;
}
}  // namespace

namespace {
// A record's fields as the table names them (record_fields.h); doubles that are not finite as null.
template <typename Record, size_t N>
void write_fields(json& out, const Record& record, const RecordField<Record> (&fields)[N]) {
  for (const RecordField<Record>& f : fields)
    std::visit(
        [&](auto member) {
          const auto& value = record.*member;
          if constexpr (std::is_same_v<std::decay_t<decltype(value)>, double>)
            out[f.name] = number(value);
          else
            out[f.name] = value;
        },
        f.member);
}
}  // namespace

json to_json(const StepMetrics& m) {
  json out = {{"type", "step"}};
  write_fields(out, m, kStepFields);
  out["metrics"] = named_json(m.metrics);
  return out;
}

json to_json(const EvalMetrics& m) {
  json out = {{"type", "eval"}};
  write_fields(out, m, kEvalFields);
  return out;
}

json to_json(const RunSummary& s) {
  json targets = json::array();
  for (const auto& t : s.targets)
    targets.push_back({{"target", t.target},
                       {"reached", t.reached},
                       {"steps", t.reached ? json(t.steps) : json(nullptr)},
                       {"tokens", t.reached ? json(t.tokens) : json(nullptr)},
                       {"seconds", t.reached ? json(t.seconds) : json(nullptr)},
                       {"flops", t.reached ? json(t.flops) : json(nullptr)}});
  return {{"type", "summary"},
          {"status", outcome_name(s.outcome)},
          {"message", s.message},
          {"steps", s.steps_completed},
          {"diverged_step", s.diverged_step},
          {"reused_from_job", s.reused_from_job},
          {"final_train_loss", number(s.final_train_loss)},
          {"final_val_loss", number(s.final_val_loss)},
          {"final_val_ppl", number(s.final_val_ppl)},
          {"loss_spike_count", s.loss_spikes.size()},
          {"loss_spikes", spikes_json(s.loss_spikes)},
          {"grad_norm_spike_count", s.grad_norm_spikes.size()},
          {"grad_norm_spikes", spikes_json(s.grad_norm_spikes)},
          {"spike_detector",
           {{"window", s.spike_window},
            {"zscore", s.spike_zscore},
            {"min_relative", s.spike_min_relative},
            {"min_history", s.spike_min_history}}},
          {"targets", targets},
          {"peak_memory_bytes", s.peak_memory_bytes},
          {"tokens_per_second", s.tokens_per_second},
          {"achieved_gflops", s.achieved_gflops},
          {"tokens", s.tokens_seen},
          {"elapsed_s", s.elapsed_seconds},
          {"train_s", s.train_seconds},
          {"num_params", s.num_params},
          {"expert_load", s.expert_load},
          {"inference",
           {{"tokens_per_second", s.inference_tokens_per_second},
            {"cache_bytes_per_token", s.cache_bytes_per_token},
            {"batch", 1},
            {"prompt_tokens", s.inference_prompt_tokens},
            {"generated_tokens", s.inference_generated_tokens}}},
          {"dataset",
           {{"id", s.dataset_id},
            {"source", s.dataset_source},
            {"val", s.dataset_val},
            {"manifest", s.dataset_manifest},
            {"train_tokens", s.dataset_train_tokens},
            {"val_tokens", s.dataset_val_tokens}}},
          {"trainer",
           {{"commit", s.trainer_commit},
            {"dirty", s.trainer_dirty},
            {"binary_sha256", s.trainer_binary_sha256}}},
          {"flops_per_token",
           {{"train", s.flops.train_per_token},
            {"inference", s.flops.inference_per_token},
            {"active_params", s.flops.active_params},
            {"attention_term", s.flops.attention_term}}},
          {"optimizer_flops_per_step", s.flops.optimizer_per_step}};
}

namespace {

// Typed reads of one record's fields: a missing optional field keeps its default; a present one
// of the wrong type is an error that names it.
class Fields {
 public:
  Fields(const json& record, const char* type) : record_(record), type_(type) {}
  template <typename T>
  void integer(const char* key, T& out, bool required = false) {
    const json* v = find(key, required);
    if (!v) return;
    if (!v->is_number_integer()) fail(key, "an integer");
    out = v->get<T>();
  }
  void number(const char* key, double& out, bool required = false) {  // null: not finite
    const json* v = find(key, required);
    if (!v) return;
    if (v->is_null())
      out = std::numeric_limits<double>::quiet_NaN();
    else if (v->is_number())
      out = v->get<double>();
    else
      fail(key, "a number or null");
  }
  void boolean(const char* key, bool& out) {
    const json* v = find(key, false);
    if (!v) return;
    if (!v->is_boolean()) fail(key, "true or false");
    out = v->get<bool>();
  }
  void text(const char* key, std::string& out, bool required = false) {
    const json* v = find(key, required);
    if (!v) return;
    if (!v->is_string()) fail(key, "a string");
    out = v->get<std::string>();
  }
  void named(const char* key, std::vector<NamedValue>& out) {
    const json* v = find(key, false);
    if (!v) return;
    if (!v->is_object()) fail(key, "an object of name: number");
    if (v->size() > kMaxMetricNames)
      fail(key, "at most " + std::to_string(kMaxMetricNames) + " names");
    for (const auto& [name, value] : v->items()) {
      if (name.empty() || name.size() > kMaxMetricNameBytes)
        fail(key, "names of 1.." + std::to_string(kMaxMetricNameBytes) + " bytes");
      if (!value.is_number() && !value.is_null())
        fail((std::string(key) + "." + name).c_str(), "a number or null");
      out.push_back(
          {name, value.is_null() ? std::numeric_limits<double>::quiet_NaN() : value.get<double>()});
    }
  }
  // Every field of the table (record_fields.h), each read as its member's type.
  template <typename Record, size_t N>
  void fields(Record& record, const RecordField<Record> (&table)[N]) {
    for (const RecordField<Record>& f : table)
      std::visit(
          [&](auto member) {
            auto& value = record.*member;
            using T = std::decay_t<decltype(value)>;
            if constexpr (std::is_same_v<T, double>)
              number(f.name, value, f.has(kRequired));
            else if constexpr (std::is_same_v<T, int64_t>)
              integer(f.name, value, f.has(kRequired));
            else
              boolean(f.name, value);
          },
          f.member);
  }
  [[noreturn]] void fail(const char* key, const std::string& expected) const {
    throw RunRecordError(std::string(type_) + " record: \"" + key + "\" must be " + expected);
  }

 private:
  const json* find(const char* key, bool required) const {
    const auto it = record_.find(key);
    if (it == record_.end()) {
      if (required)
        throw RunRecordError(std::string(type_) + " record: \"" + key + "\" is missing");
      return nullptr;
    }
    return &*it;
  }
  const json& record_;
  const char* type_;
};

}  // namespace

bool is_fixed_field(std::string_view name) {
  for (const RecordField<StepMetrics>& f : kStepFields)
    if (is_kept_series(f) && name == f.name) return true;
  return false;
}

std::optional<RunRecord> parse_run_record(std::string_view line) {
  const json record = json::parse(line.begin(), line.end(), nullptr, false);
  if (record.is_discarded()) throw RunRecordError("not a JSON line");
  if (!record.is_object() || !record.contains("type") || !record["type"].is_string())
    throw RunRecordError("a record is a JSON object with a string \"type\"");
  const std::string type = record["type"];
  Fields f(record, type.c_str());
  if (type == "step") {
    StepMetrics m;
    f.fields(m, kStepFields);
    f.named("metrics", m.metrics);
    return m;
  }
  if (type == "eval") {
    EvalMetrics m;
    f.fields(m, kEvalFields);
    return m;
  }
  if (type == "start") {
    StartRecord r;
    f.integer("version", r.version);
    f.integer("start_step", r.start_step);
    f.integer("max_steps", r.max_steps);
    return r;
  }
  if (type == "checkpoint") {
    CheckpointRecord r;
    f.integer("step", r.step, true);
    f.text("path", r.path);
    return r;
  }
  if (type == "summary") {
    SummaryRecord r;
    r.summary = summary_from_json(record);
    r.outcome = r.summary.outcome;
    r.message = r.summary.message;
    r.fields = record;
    return r;
  }
  return std::nullopt;
}

namespace {
// A nested object of a record, read the same way ("summary record: \"targets[0].steps\" ...").
const json& object_at(const json& parent, const char* key) {
  static const json kEmpty = json::object();
  const auto it = parent.find(key);
  return it != parent.end() && it->is_object() ? *it : kEmpty;
}
}  // namespace

RunSummary summary_from_json(const json& record) {
  RunSummary s;
  Fields f(record, "summary");
  std::string status;
  f.text("status", status, true);
  const auto outcome = parse_outcome(status);
  if (!outcome) f.fail("status", "succeeded, diverged or stopped");
  s.outcome = *outcome;
  f.text("message", s.message);
  f.integer("steps", s.steps_completed);
  f.integer("diverged_step", s.diverged_step);
  f.integer("reused_from_job", s.reused_from_job);
  f.number("final_train_loss", s.final_train_loss);
  f.number("final_val_loss", s.final_val_loss);
  f.number("final_val_ppl", s.final_val_ppl);
  f.integer("peak_memory_bytes", s.peak_memory_bytes);
  f.number("tokens_per_second", s.tokens_per_second);
  f.number("achieved_gflops", s.achieved_gflops);
  f.integer("tokens", s.tokens_seen);
  f.number("elapsed_s", s.elapsed_seconds);
  f.number("train_s", s.train_seconds);
  f.integer("num_params", s.num_params);
  for (const char* key : {"loss_spikes", "grad_norm_spikes"}) {
    auto& spikes = std::string(key) == "loss_spikes" ? s.loss_spikes : s.grad_norm_spikes;
    const auto it = record.find(key);
    if (it == record.end() || !it->is_array()) continue;
    for (const json& item : *it) {
      Spike spike;
      Fields sf(item, key);
      sf.integer("start_step", spike.start_step);
      sf.integer("peak_step", spike.peak_step);
      sf.number("peak", spike.peak_value);
      sf.integer("recovery_step", spike.recovery_step);
      sf.number("baseline_mean", spike.baseline_mean);
      spikes.push_back(spike);
    }
  }
  if (const auto it = record.find("targets"); it != record.end() && it->is_array())
    for (const json& item : *it) {
      TargetCrossing t;
      Fields tf(item, "summary targets");
      tf.number("target", t.target, true);
      tf.boolean("reached", t.reached);
      tf.number("steps", t.steps);  // null when not reached
      tf.number("tokens", t.tokens);
      tf.number("seconds", t.seconds);
      tf.number("flops", t.flops);
      s.targets.push_back(t);
    }
  if (const auto it = record.find("expert_load"); it != record.end() && it->is_array())
    for (const json& v : *it)
      if (v.is_number()) s.expert_load.push_back(v.get<double>());
  Fields detector(object_at(record, "spike_detector"), "summary spike_detector");
  detector.integer("window", s.spike_window);
  detector.number("zscore", s.spike_zscore);
  detector.number("min_relative", s.spike_min_relative);
  detector.integer("min_history", s.spike_min_history);
  Fields inference(object_at(record, "inference"), "summary inference");
  inference.number("tokens_per_second", s.inference_tokens_per_second);
  inference.number("cache_bytes_per_token", s.cache_bytes_per_token);
  inference.integer("prompt_tokens", s.inference_prompt_tokens);
  inference.integer("generated_tokens", s.inference_generated_tokens);
  Fields dataset(object_at(record, "dataset"), "summary dataset");
  dataset.text("id", s.dataset_id);
  dataset.text("source", s.dataset_source);
  dataset.text("val", s.dataset_val);
  dataset.text("manifest", s.dataset_manifest);
  dataset.integer("train_tokens", s.dataset_train_tokens);
  dataset.integer("val_tokens", s.dataset_val_tokens);
  Fields trainer(object_at(record, "trainer"), "summary trainer");
  trainer.text("commit", s.trainer_commit);
  trainer.boolean("dirty", s.trainer_dirty);
  trainer.text("binary_sha256", s.trainer_binary_sha256);
  Fields flops(object_at(record, "flops_per_token"), "summary flops_per_token");
  flops.number("train", s.flops.train_per_token);
  flops.number("inference", s.flops.inference_per_token);
  flops.number("active_params", s.flops.active_params);
  flops.number("attention_term", s.flops.attention_term);
  // A record from before the optimizer's FLOPs were counted: its FLOPs to target are unknown
  // (too low for Muon), not a number to compare.
  s.flops.optimizer_per_step = std::numeric_limits<double>::quiet_NaN();
  f.number("optimizer_flops_per_step", s.flops.optimizer_per_step);
  if (!std::isfinite(s.flops.optimizer_per_step))
    for (TargetCrossing& t : s.targets) t.flops = std::numeric_limits<double>::quiet_NaN();
  return s;
}

void RunRecordWriter::write(const json& record) {
  std::fprintf(out_, "%s\n", record.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
  std::fflush(out_);
}
void RunRecordWriter::on_start(const RunInfo& info) {
  write({{"type", "start"},
         {"version", kRunRecordVersion},
         {"start_step", info.start_step},
         {"max_steps", info.max_steps}});
}
void RunRecordWriter::on_step(const StepMetrics& m) { write(to_json(m)); }
void RunRecordWriter::on_eval(const EvalMetrics& m) { write(to_json(m)); }
void RunRecordWriter::on_checkpoint(int64_t step, const std::string& path) {
  write({{"type", "checkpoint"}, {"step", step}, {"path", path}});
}
void RunRecordWriter::on_finish(const RunSummary& s) { write(to_json(s)); }

}  // namespace trainer_core
