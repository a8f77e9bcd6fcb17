#include "trainer_core/config/train_config.h"

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "trainer_core/config/config_fields.h"
#include "trainer_core/config/json_reader.h"
#include "trainer_core/config/presets.h"

namespace trainer_core {

using nlohmann::json;

ConfigError::ConfigError(std::vector<ConfigProblem> p) : problems(std::move(p)) {
  for (size_t i = 0; i < problems.size(); ++i) text += (i ? "\n" : "") + problems[i].to_string();
}

int TrainConfig::accumulation_steps() const {
  const int64_t per_micro = int64_t(training.micro_batch) * model.seq_len;
  return per_micro > 0 ? int(training.batch_tokens / per_micro) : 0;
}

int TrainConfig::warmup_steps() const {
  if (schedule.warmup_steps >= 0) return schedule.warmup_steps;
  return int(schedule.warmup_fraction * training.max_steps + 0.5);
}

int TrainConfig::decay_steps() const {
  if (schedule.kind != ScheduleKind::kWsd) return 0;
  return std::max(1, int(schedule.decay_fraction * training.max_steps + 0.5));
}

namespace {

namespace fields = config_fields;

// Reads fields into members; rules are the validator's.
struct FieldReader {
  JsonReader& r;
  template <typename T, typename... Rules>
  void operator()(const char* key, T& member, const Rules&...) {
    r.read(key, member);
  }
};

// Writes members as JSON, one object per section.
struct FieldWriter {
  json& out;
  template <typename T, typename... Rules>
  void operator()(const char* key, const T& member, const Rules&...) {
    if constexpr (ConfigEnum<T>)
      out[key] = name_of(member);
    else
      out[key] = member;
  }
  template <typename Body>
  void section(const char* key, Body&& body) {
    FieldWriter child{out[key] = json::object()};
    body(child);
  }
};

// Applies each field's own rules; problems carry the field's dotted path.
struct FieldValidator {
  std::string prefix;
  std::vector<ConfigProblem>& problems;
  template <typename T, typename... Rules>
  void operator()(const char* key, const T& member, const Rules&... rules) {
    (void)key;  // a field without rules
    (report(key, rules(member)), ...);
  }
  template <typename Body>
  void section(const char* key, Body&& body) {
    FieldValidator child{prefix + key + ".", problems};
    body(child);
  }
  void report(const char* key, const std::optional<std::string>& why) {
    if (why) problems.push_back({prefix + key, *why});
  }
};

// Reads one section through its field list, then reports its unknown keys.
template <typename Section, typename Member>
void read_section(JsonReader r, Member& member, Section fields_of) {
  FieldReader reader{r};
  fields_of(reader, member);
  r.finish();
}

// A token amount fixes a step count for the batch size, and an explicit step count must agree:
// training.max_tokens → max_steps (the budget), training.eval_every_tokens → eval_every (so every
// batch size is evaluated at the same token positions). `tokens` 0: the step count stands.
void resolve_steps_from_tokens(const std::string& tokens_key, int64_t tokens,
                               const std::string& steps_key, int& steps, bool explicit_steps,
                               int64_t batch_tokens, std::vector<ConfigProblem>& problems) {
  if (tokens < 0) problems.push_back({tokens_key, "must be >= 0 (0 = use " + steps_key + ")"});
  if (tokens <= 0 || batch_tokens <= 0) return;
  if (tokens % batch_tokens != 0) {
    problems.push_back({tokens_key, "must be a multiple of training.batch_tokens (" +
                                        std::to_string(batch_tokens) + "), got " +
                                        std::to_string(tokens)});
    return;
  }
  const int64_t resolved = tokens / batch_tokens;
  if (explicit_steps && resolved != steps) {
    problems.push_back({steps_key, "conflicts with " + tokens_key + " (" + std::to_string(tokens) +
                                       " tokens = " + std::to_string(resolved) + " steps of " +
                                       std::to_string(batch_tokens) +
                                       " tokens): give one of them"});
    return;
  }
  if (resolved > std::numeric_limits<int>::max()) {
    problems.push_back({tokens_key, "gives " + std::to_string(resolved) + " steps, too many"});
    return;
  }
  steps = int(resolved);
}

}  // namespace

std::string training_length_text(const TrainConfig& c) {
  const std::string steps = std::to_string(c.training.max_steps) + " steps of " +
                            std::to_string(c.training.batch_tokens) + " tokens";
  if (c.training.max_tokens > 0)
    return steps + " (from training.max_tokens = " + std::to_string(c.training.max_tokens) + ")";
  return steps + " (training.max_steps; " +
         std::to_string(int64_t(c.training.max_steps) * c.training.batch_tokens) + " tokens)";
}

TrainConfig train_config_from_json(const json& j) {
  std::vector<ConfigProblem> problems;
  TrainConfig c;
  // Types and unknown keys first; a value outside a choice's names waits beside the rules.
  std::vector<ConfigProblem> value_problems;
  JsonReader r(j, "", problems);
  r.report_values_to(&value_problems);
  FieldReader top{r};
  fields::top_fields(top, c);
  // A preset fills the model's dims first; explicit fields override them. Its AdamW-matched lr
  // is the default unless optimizer.lr is given.
  double preset_lr = 0;
  {
    JsonReader m = r.child("model");
    m.read("preset", c.model.preset);
    if (auto preset = find_preset(c.model.preset)) {
      const std::string name = c.model.preset;
      c.model = preset->model;
      c.model.preset = name;
      preset_lr = preset->adamw_lr;
    }
    read_section(m, c.model,
                 [](FieldReader& v, ModelConfig& model) { fields::model_fields(v, model); });
  }
  if (preset_lr > 0) c.optimizer.lr = preset_lr;
  const double preset_adamw_lr = c.optimizer.lr;
  {
    JsonReader o = r.child("optimizer");
    read_section(o.child("muon"), c.optimizer.muon,
                 [](FieldReader& v, MuonConfig& m) { fields::muon_fields(v, m); });
    read_section(o, c.optimizer,
                 [](FieldReader& v, OptimizerConfig& opt) { fields::optimizer_fields(v, opt); });
  }
  if (c.optimizer.name != OptimizerKind::kMuon)
    c.optimizer.adamw_lr = c.optimizer.lr;
  else if (c.optimizer.adamw_lr == 0)
    c.optimizer.adamw_lr = preset_adamw_lr;
  const auto given_in_training = [&](const char* key) {
    return j.is_object() && j.contains("training") && j["training"].is_object() &&
           j["training"].contains(key);
  };
  read_section(r.child("schedule"), c.schedule,
               [](FieldReader& v, ScheduleConfig& x) { fields::schedule_fields(v, x); });
  read_section(r.child("training"), c.training,
               [](FieldReader& v, TrainingConfig& x) { fields::training_fields(v, x); });
  read_section(r.child("data"), c.data,
               [](FieldReader& v, DataConfig& x) { fields::data_fields(v, x); });
  read_section(r.child("metrics"), c.metrics,
               [](FieldReader& v, MetricsConfig& x) { fields::metrics_fields(v, x); });
  read_section(r.child("reusable_run"), c.reusable_run,
               [](FieldReader& v, ReusableRunConfig& x) { fields::reusable_run_fields(v, x); });
  r.finish();
  if (problems.empty()) {
    TrainingConfig& t = c.training;
    resolve_steps_from_tokens("training.max_tokens", t.max_tokens, "training.max_steps",
                              t.max_steps, given_in_training("max_steps"), t.batch_tokens,
                              problems);
    resolve_steps_from_tokens("training.eval_every_tokens", t.eval_every_tokens,
                              "training.eval_every", t.eval_every, given_in_training("eval_every"),
                              t.batch_tokens, problems);
  }
  if (problems.empty()) {
    problems = std::move(value_problems);
    for (auto& p : validate(c)) problems.push_back(std::move(p));
  }
  if (!problems.empty()) throw ConfigError(std::move(problems));
  return c;
}

json to_json(const TrainConfig& c) {
  json out = json::object();
  FieldWriter writer{out};
  fields::all_sections(writer, c);
  return out;
}

std::vector<ConfigProblem> validate(const TrainConfig& c) {
  std::vector<ConfigProblem> p;
  // Each field's own rules (config_fields.h), then the rules that involve several fields.
  FieldValidator fields_validator{"", p};
  fields::all_sections(fields_validator, c);
  auto need = [&](bool ok, const char* path, const std::string& message) {
    if (!ok) p.push_back({path, message});
  };
  const auto& m = c.model;
  const auto& o = c.optimizer;
  const auto& t = c.training;
  if (!find_preset(m.preset) && m.preset != "custom")
    p.push_back({"model.preset", "unknown preset '" + m.preset + "'"});
  if (m.n_head >= 1 && m.hidden >= 2) {
    need(m.hidden % m.n_head == 0, "model.hidden", "must be a multiple of model.n_head");
    need(m.hidden % m.n_head != 0 || m.head_dim() % 2 == 0, "model.n_head",
         "head dimension hidden/n_head must be even (RoPE rotates pairs)");
  }
  need(m.rope_dim >= 0 && m.rope_dim % 2 == 0, "model.rope_dim",
       "must be even and >= 0 (0 = min(32, head_dim / 2))");
  if (m.attention == Attention::kMla && m.n_head >= 1 && m.hidden % m.n_head == 0)
    need(m.resolved_rope_dim() >= 2 && m.resolved_rope_dim() < m.head_dim(), "model.rope_dim",
         "must leave part of each head without RoPE (2 <= rope_dim < head_dim = " +
             std::to_string(m.head_dim()) + ")");
  need(m.mup_output_multiplier == 1.0 || m.parametrization == Parametrization::kMup,
       "model.mup_output_multiplier", "applies only with model.parametrization mup");
  need(m.top_k >= 1 && m.top_k <= m.n_experts, "model.top_k", "must be in [1, model.n_experts]");
  need(m.ffn != Ffn::kMoe || m.activation == Activation::kGelu, "model.activation",
       "MoE experts are GELU MLPs: use gelu with ffn moe");

  need(o.name != OptimizerKind::kMuon || o.adamw_lr >= 0, "optimizer.adamw_lr",
       "must be >= 0 (0 = the preset's AdamW lr)");

  need(c.schedule.warmup_steps >= -1, "schedule.warmup_steps",
       "must be >= 0 (or -1 to use warmup_fraction)");
  if (t.max_steps >= 1)
    need(c.warmup_steps() < t.max_steps, "schedule.warmup_steps", "must be < training.max_steps");
  if (c.schedule.kind == ScheduleKind::kWsd) {
    need(c.schedule.decay_fraction <= 1, "schedule.decay_fraction", "must be in (0, 1]");
    if (t.max_steps >= 1 && c.schedule.decay_fraction <= 1)
      need(c.warmup_steps() + c.decay_steps() <= t.max_steps, "schedule.decay_fraction",
           "warm-up (" + std::to_string(c.warmup_steps()) + " steps) and decay (" +
               std::to_string(c.decay_steps()) + " steps) must fit in training.max_steps (" +
               std::to_string(t.max_steps) + ")");
    need(c.schedule.decay_shape != DecayShape::kInverseSqrt || c.schedule.min_lr_ratio > 0,
         "schedule.min_lr_ratio",
         "must be > 0 with decay_shape inverse_sqrt (1/sqrt never reaches 0)");
  }
  if (t.micro_batch >= 1 && m.seq_len >= 2) {
    const int64_t per_micro = int64_t(t.micro_batch) * m.seq_len;
    need(t.batch_tokens >= per_micro && t.batch_tokens % per_micro == 0, "training.batch_tokens",
         "must be a positive multiple of training.micro_batch * model.seq_len (= " +
             std::to_string(per_micro) + "), got " + std::to_string(t.batch_tokens));
  }
  if (t.data_parallel >= 1 && t.micro_batch >= 1)
    need(t.micro_batch % t.data_parallel == 0, "training.micro_batch",
         "must be a multiple of training.data_parallel (each rank takes micro_batch / "
         "data_parallel sequences), got " +
             std::to_string(t.micro_batch) + " for " + std::to_string(t.data_parallel) + " ranks");
  need(t.eval_tokens >= m.seq_len, "training.eval_tokens", "must be >= model.seq_len");
  need(t.checkpoint_every == 0 || !t.checkpoint_dir.empty(), "training.checkpoint_dir",
       "must be set when training.checkpoint_every > 0");

  need(c.data.train.empty() == c.data.val.empty(), c.data.train.empty() ? "data.train" : "data.val",
       "data.train and data.val are given together (training and validation shards)");
  const int needed_vocab = c.data.tokenizer == TokenizerKind::kGpt2 ? 50257 : 256;
  need(
      m.vocab_size >= needed_vocab, "model.vocab_size",
      "must be >= " + std::to_string(needed_vocab) + " for tokenizer " + name_of(c.data.tokenizer));
  need(c.data.val_fraction > 0 && c.data.val_fraction <= 0.5, "data.val_fraction",
       "must be in (0, 0.5]");
  for (size_t i = 0; i < t.checkpoint_at_steps.size(); ++i) {
    const int64_t at = t.checkpoint_at_steps[i];
    if (at < 1 || at > t.max_steps)
      p.push_back({"training.checkpoint_at_steps[" + std::to_string(i) + "]",
                   "must be a step in [1, training.max_steps], got " + std::to_string(at)});
  }
  need(t.checkpoint_at_steps.empty() || !t.checkpoint_dir.empty(), "training.checkpoint_at_steps",
       "needs training.checkpoint_dir (where the kept checkpoints go)");
  for (size_t i = 0; i < c.metrics.target_losses.size(); ++i)
    if (!(c.metrics.target_losses[i] > 0))
      p.push_back({"metrics.target_losses[" + std::to_string(i) + "]", "must be > 0"});
  return p;
}

TrainConfig load_train_config(const std::string& path) {
  return train_config_from_json(read_config_document(path));
}

}  // namespace trainer_core
