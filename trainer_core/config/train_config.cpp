#include "trainer_core/config/train_config.h"

#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "trainer_core/config/json_reader.h"
#include "trainer_core/model/presets.h"
#include "trainer_core/optim/newton_schulz.h"

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

namespace {

void read_model(JsonReader r, ModelConfig& m, double* preset_lr) {
  r.read("preset", m.preset);
  if (auto preset = find_preset(m.preset)) {
    const std::string name = m.preset;
    m = preset->model;
    m.preset = name;
    if (preset_lr) *preset_lr = preset->adamw_lr;
  }
  r.read("n_layer", m.n_layer);
  r.read("hidden", m.hidden);
  r.read("n_head", m.n_head);
  r.read("ffn_hidden", m.ffn_hidden);
  r.read("vocab_size", m.vocab_size);
  r.read("seq_len", m.seq_len);
  r.read("norm", m.norm);
  r.read("activation", m.activation);
  r.read("tie_embeddings", m.tie_embeddings);
  r.read("rope_theta", m.rope_theta);
  r.read("init_std", m.init_std);
  r.read("norm_eps", m.norm_eps);
  r.read("attention", m.attention);
  r.read("kv_latent_dim", m.kv_latent_dim);
  r.read("q_latent_dim", m.q_latent_dim);
  r.read("rope_dim", m.rope_dim);
  r.read("ffn", m.ffn);
  r.read("n_experts", m.n_experts);
  r.read("top_k", m.top_k);
  r.read("expert_ffn_hidden", m.expert_ffn_hidden);
  r.read("shared_expert", m.shared_expert);
  r.read("moe_aux_loss_coef", m.moe_aux_loss_coef);
  r.finish();
}

void read_optimizer(JsonReader r, OptimizerConfig& o) {
  r.read("name", o.name);
  r.read("lr", o.lr);
  r.read("adamw_lr", o.adamw_lr);
  r.read("weight_decay", o.weight_decay);
  r.read("beta1", o.beta1);
  r.read("beta2", o.beta2);
  r.read("eps", o.eps);
  JsonReader m = r.child("muon");
  m.read("momentum", o.muon.momentum);
  m.read("nesterov", o.muon.nesterov);
  m.read("ns_coefficients", o.muon.ns_coefficients);
  m.read("ns_steps", o.muon.ns_steps);
  m.read("rms_matching", o.muon.rms_matching);
  m.read("decoupled_weight_decay", o.muon.decoupled_weight_decay);
  m.read("dynamic_rms_ema", o.muon.dynamic_rms_ema);
  m.finish();
  r.finish();
}

// A token budget fixes the step count for the batch size; an explicit max_steps must agree.
void resolve_training_length(TrainConfig& c, bool explicit_max_steps,
                             std::vector<ConfigProblem>& problems) {
  TrainingConfig& t = c.training;
  if (t.max_tokens < 0)
    problems.push_back({"training.max_tokens", "must be >= 0 (0 = use training.max_steps)"});
  if (t.max_tokens <= 0 || t.batch_tokens <= 0) return;
  if (t.max_tokens % t.batch_tokens != 0) {
    problems.push_back({"training.max_tokens", "must be a multiple of training.batch_tokens (" +
                                                   std::to_string(t.batch_tokens) + "), got " +
                                                   std::to_string(t.max_tokens)});
    return;
  }
  const int64_t steps = t.max_tokens / t.batch_tokens;
  if (explicit_max_steps && steps != t.max_steps) {
    problems.push_back({"training.max_steps",
                        "conflicts with training.max_tokens (" + std::to_string(t.max_tokens) +
                            " tokens = " + std::to_string(steps) + " steps of " +
                            std::to_string(t.batch_tokens) + " tokens): give one of them"});
    return;
  }
  if (steps > std::numeric_limits<int>::max()) {
    problems.push_back(
        {"training.max_tokens", "gives " + std::to_string(steps) + " steps, too many"});
    return;
  }
  t.max_steps = int(steps);
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
  bool explicit_max_steps = false;
  JsonReader r(j, "", problems);
  r.read("name", c.name);
  r.read("seed", c.seed);
  r.read("backend", c.backend);
  r.read("threads", c.threads);
  // The preset's AdamW-matched lr is the default unless optimizer.lr is given.
  double preset_lr = 0;
  read_model(r.child("model"), c.model, &preset_lr);
  if (preset_lr > 0) c.optimizer.lr = preset_lr;
  const double preset_adamw_lr = c.optimizer.lr;
  read_optimizer(r.child("optimizer"), c.optimizer);
  if (c.optimizer.name != "muon")
    c.optimizer.adamw_lr = c.optimizer.lr;
  else if (c.optimizer.adamw_lr == 0)
    c.optimizer.adamw_lr = preset_adamw_lr;
  {
    JsonReader s = r.child("schedule");
    s.read("warmup_steps", c.schedule.warmup_steps);
    s.read("warmup_fraction", c.schedule.warmup_fraction);
    s.read("min_lr_ratio", c.schedule.min_lr_ratio);
    s.finish();
  }
  {
    JsonReader t = r.child("training");
    t.read("max_steps", c.training.max_steps);
    t.read("max_tokens", c.training.max_tokens);
    explicit_max_steps = j.is_object() && j.contains("training") && j["training"].is_object() &&
                         j["training"].contains("max_steps");
    t.read("batch_tokens", c.training.batch_tokens);
    t.read("micro_batch", c.training.micro_batch);
    t.read("data_parallel", c.training.data_parallel);
    t.read("grad_clip", c.training.grad_clip);
    t.read("eval_every", c.training.eval_every);
    t.read("eval_tokens", c.training.eval_tokens);
    t.read("checkpoint_every", c.training.checkpoint_every);
    t.read("checkpoint_dir", c.training.checkpoint_dir);
    t.finish();
  }
  {
    JsonReader d = r.child("data");
    d.read("train", c.data.train);
    d.read("val", c.data.val);
    d.read("corpus", c.data.corpus);
    d.read("tokenizer", c.data.tokenizer);
    d.read("cache_dir", c.data.cache_dir);
    d.read("bpe_dir", c.data.bpe_dir);
    d.read("max_corpus_bytes", c.data.max_corpus_bytes);
    d.read("val_fraction", c.data.val_fraction);
    d.finish();
  }
  {
    JsonReader m = r.child("metrics");
    m.read("spike_window", c.metrics.spike_window);
    m.read("spike_zscore", c.metrics.spike_zscore);
    m.read("spike_min_relative", c.metrics.spike_min_relative);
    m.read("spike_min_history", c.metrics.spike_min_history);
    m.read("diagnostics_every", c.metrics.diagnostics_every);
    m.read("target_losses", c.metrics.target_losses);
    m.finish();
  }
  r.finish();
  if (problems.empty()) resolve_training_length(c, explicit_max_steps, problems);
  if (problems.empty()) problems = validate(c);
  if (!problems.empty()) throw ConfigError(std::move(problems));
  return c;
}

json to_json(const TrainConfig& c) {
  const auto& m = c.model;
  const auto& o = c.optimizer;
  return json{
      {"name", c.name},
      {"seed", c.seed},
      {"backend", c.backend},
      {"threads", c.threads},
      {"model",
       {{"preset", m.preset},
        {"n_layer", m.n_layer},
        {"hidden", m.hidden},
        {"n_head", m.n_head},
        {"ffn_hidden", m.ffn_hidden},
        {"vocab_size", m.vocab_size},
        {"seq_len", m.seq_len},
        {"norm", m.norm},
        {"activation", m.activation},
        {"tie_embeddings", m.tie_embeddings},
        {"rope_theta", m.rope_theta},
        {"init_std", m.init_std},
        {"norm_eps", m.norm_eps},
        {"attention", m.attention},
        {"kv_latent_dim", m.kv_latent_dim},
        {"q_latent_dim", m.q_latent_dim},
        {"rope_dim", m.rope_dim},
        {"ffn", m.ffn},
        {"n_experts", m.n_experts},
        {"top_k", m.top_k},
        {"expert_ffn_hidden", m.expert_ffn_hidden},
        {"shared_expert", m.shared_expert},
        {"moe_aux_loss_coef", m.moe_aux_loss_coef}}},
      {"optimizer",
       {{"name", o.name},
        {"lr", o.lr},
        {"adamw_lr", o.adamw_lr},
        {"weight_decay", o.weight_decay},
        {"beta1", o.beta1},
        {"beta2", o.beta2},
        {"eps", o.eps},
        {"muon",
         {{"momentum", o.muon.momentum},
          {"nesterov", o.muon.nesterov},
          {"ns_coefficients", o.muon.ns_coefficients},
          {"ns_steps", o.muon.ns_steps},
          {"rms_matching", o.muon.rms_matching},
          {"decoupled_weight_decay", o.muon.decoupled_weight_decay},
          {"dynamic_rms_ema", o.muon.dynamic_rms_ema}}}}},
      {"schedule",
       {{"warmup_steps", c.schedule.warmup_steps},
        {"warmup_fraction", c.schedule.warmup_fraction},
        {"min_lr_ratio", c.schedule.min_lr_ratio}}},
      {"training",
       {{"max_steps", c.training.max_steps},
        {"max_tokens", c.training.max_tokens},
        {"batch_tokens", c.training.batch_tokens},
        {"micro_batch", c.training.micro_batch},
        {"data_parallel", c.training.data_parallel},
        {"grad_clip", c.training.grad_clip},
        {"eval_every", c.training.eval_every},
        {"eval_tokens", c.training.eval_tokens},
        {"checkpoint_every", c.training.checkpoint_every},
        {"checkpoint_dir", c.training.checkpoint_dir}}},
      {"data",
       {{"train", c.data.train},
        {"val", c.data.val},
        {"corpus", c.data.corpus},
        {"tokenizer", c.data.tokenizer},
        {"cache_dir", c.data.cache_dir},
        {"bpe_dir", c.data.bpe_dir},
        {"max_corpus_bytes", c.data.max_corpus_bytes},
        {"val_fraction", c.data.val_fraction}}},
      {"metrics",
       {{"spike_window", c.metrics.spike_window},
        {"spike_zscore", c.metrics.spike_zscore},
        {"spike_min_relative", c.metrics.spike_min_relative},
        {"spike_min_history", c.metrics.spike_min_history},
        {"diagnostics_every", c.metrics.diagnostics_every},
        {"target_losses", c.metrics.target_losses}}},
  };
}

std::vector<ConfigProblem> validate(const TrainConfig& c) {
  std::vector<ConfigProblem> p;
  auto need = [&](bool ok, const char* path, const std::string& message) {
    if (!ok) p.push_back({path, message});
  };
  auto one_of = [&](const std::string& v, std::initializer_list<const char*> allowed,
                    const char* path) {
    std::string list;
    for (const char* a : allowed) {
      if (v == a) return;
      list += (list.empty() ? "" : ", ") + std::string(a);
    }
    p.push_back({path, "must be one of " + list + ", got '" + v + "'"});
  };
  const auto& m = c.model;
  const auto& o = c.optimizer;
  const auto& t = c.training;
  need(!c.name.empty(), "name", "must not be empty");
  one_of(c.backend, {"cpu", "cuda"}, "backend");
  need(c.threads >= 0, "threads", "must be >= 0 (0 = all cores)");
  if (!find_preset(m.preset) && m.preset != "custom")
    p.push_back({"model.preset", "unknown preset '" + m.preset + "'"});
  need(m.n_layer >= 1, "model.n_layer", "must be >= 1");
  need(m.hidden >= 2, "model.hidden", "must be >= 2");
  need(m.n_head >= 1, "model.n_head", "must be >= 1");
  if (m.n_head >= 1 && m.hidden >= 2) {
    need(m.hidden % m.n_head == 0, "model.hidden", "must be a multiple of model.n_head");
    need(m.hidden % m.n_head != 0 || m.head_dim() % 2 == 0, "model.n_head",
         "head dimension hidden/n_head must be even (RoPE rotates pairs)");
  }
  need(m.ffn_hidden >= 1, "model.ffn_hidden", "must be >= 1");
  need(m.vocab_size >= 2 && m.vocab_size <= 65536, "model.vocab_size", "must be in [2, 65536]");
  need(m.seq_len >= 2, "model.seq_len", "must be >= 2");
  one_of(m.norm, {"rmsnorm", "layernorm"}, "model.norm");
  one_of(m.activation, {"gelu", "swiglu"}, "model.activation");
  need(m.rope_theta > 0, "model.rope_theta", "must be > 0");
  need(m.init_std > 0, "model.init_std", "must be > 0");
  need(m.norm_eps > 0, "model.norm_eps", "must be > 0");
  one_of(m.attention, {"mha", "mla"}, "model.attention");
  one_of(m.ffn, {"dense", "moe"}, "model.ffn");
  need(m.kv_latent_dim >= 0, "model.kv_latent_dim", "must be >= 0 (0 = hidden / 2)");
  need(m.q_latent_dim >= 0, "model.q_latent_dim", "must be >= 0 (0 = full-rank queries)");
  need(m.rope_dim >= 0 && m.rope_dim % 2 == 0, "model.rope_dim",
       "must be even and >= 0 (0 = min(32, head_dim / 2))");
  if (m.attention == "mla" && m.n_head >= 1 && m.hidden % m.n_head == 0)
    need(m.resolved_rope_dim() >= 2 && m.resolved_rope_dim() < m.head_dim(), "model.rope_dim",
         "must leave part of each head without RoPE (2 <= rope_dim < head_dim = " +
             std::to_string(m.head_dim()) + ")");
  need(m.n_experts >= 1, "model.n_experts", "must be >= 1");
  need(m.top_k >= 1 && m.top_k <= m.n_experts, "model.top_k", "must be in [1, model.n_experts]");
  need(m.expert_ffn_hidden >= 0, "model.expert_ffn_hidden",
       "must be >= 0 (0 = ffn_hidden / top_k)");
  need(m.moe_aux_loss_coef >= 0, "model.moe_aux_loss_coef", "must be >= 0");
  need(m.ffn != "moe" || m.activation == "gelu", "model.activation",
       "MoE experts are GELU MLPs: use gelu with ffn moe");

  one_of(o.name, {"adamw", "muon"}, "optimizer.name");
  need(o.lr > 0, "optimizer.lr", "must be > 0");
  need(o.name != "muon" || o.adamw_lr >= 0, "optimizer.adamw_lr",
       "must be >= 0 (0 = the preset's AdamW lr)");
  need(o.weight_decay >= 0, "optimizer.weight_decay", "must be >= 0");
  need(o.beta1 >= 0 && o.beta1 < 1, "optimizer.beta1", "must be in [0, 1)");
  need(o.beta2 >= 0 && o.beta2 < 1, "optimizer.beta2", "must be in [0, 1)");
  need(o.eps > 0, "optimizer.eps", "must be > 0");
  need(o.muon.momentum >= 0 && o.muon.momentum < 1, "optimizer.muon.momentum", "must be in [0, 1)");
  if (!is_known_ns_set(o.muon.ns_coefficients))
    one_of(o.muon.ns_coefficients, {"jordan", "cubic", "taylor", "polar_express", "svd", "none"},
           "optimizer.muon.ns_coefficients");
  need(o.muon.ns_steps >= 1, "optimizer.muon.ns_steps", "must be >= 1");
  one_of(o.muon.rms_matching, {"moonlight", "original", "none", "per_layer_dynamic"},
         "optimizer.muon.rms_matching");
  need(o.muon.dynamic_rms_ema >= 0 && o.muon.dynamic_rms_ema < 1, "optimizer.muon.dynamic_rms_ema",
       "must be in [0, 1)");

  need(c.schedule.warmup_steps >= -1, "schedule.warmup_steps",
       "must be >= 0 (or -1 to use warmup_fraction)");
  need(c.schedule.warmup_fraction >= 0 && c.schedule.warmup_fraction < 1,
       "schedule.warmup_fraction", "must be in [0, 1)");
  need(c.schedule.min_lr_ratio >= 0 && c.schedule.min_lr_ratio <= 1, "schedule.min_lr_ratio",
       "must be in [0, 1]");
  need(t.max_steps >= 1, "training.max_steps", "must be >= 1");
  if (t.max_steps >= 1)
    need(c.warmup_steps() < t.max_steps, "schedule.warmup_steps", "must be < training.max_steps");
  need(t.micro_batch >= 1, "training.micro_batch", "must be >= 1");
  if (t.micro_batch >= 1 && m.seq_len >= 2) {
    const int64_t per_micro = int64_t(t.micro_batch) * m.seq_len;
    need(t.batch_tokens >= per_micro && t.batch_tokens % per_micro == 0, "training.batch_tokens",
         "must be a positive multiple of training.micro_batch * model.seq_len (= " +
             std::to_string(per_micro) + "), got " + std::to_string(t.batch_tokens));
  }
  need(t.data_parallel >= 1, "training.data_parallel", "must be >= 1");
  if (t.data_parallel >= 1 && t.micro_batch >= 1)
    need(
        t.micro_batch % t.data_parallel == 0, "training.micro_batch",
        "must be a multiple of training.data_parallel (each rank takes micro_batch / data_parallel "
        "sequences), got " +
            std::to_string(t.micro_batch) + " for " + std::to_string(t.data_parallel) + " ranks");
  need(t.grad_clip >= 0, "training.grad_clip", "must be >= 0 (0 disables clipping)");
  need(t.eval_every >= 1, "training.eval_every", "must be >= 1");
  need(t.eval_tokens >= m.seq_len, "training.eval_tokens", "must be >= model.seq_len");
  need(t.checkpoint_every >= 0, "training.checkpoint_every", "must be >= 0");
  need(t.checkpoint_every == 0 || !t.checkpoint_dir.empty(), "training.checkpoint_dir",
       "must be set when training.checkpoint_every > 0");

  need(!c.data.corpus.empty(), "data.corpus", "must not be empty");
  need(c.data.train.empty() == c.data.val.empty(), c.data.train.empty() ? "data.train" : "data.val",
       "data.train and data.val are given together (training and validation shards)");
  one_of(c.data.tokenizer, {"byte", "gpt2"}, "data.tokenizer");
  const int needed_vocab = c.data.tokenizer == "gpt2" ? 50257 : 256;
  need(m.vocab_size >= needed_vocab, "model.vocab_size",
       "must be >= " + std::to_string(needed_vocab) + " for tokenizer " + c.data.tokenizer);
  need(c.data.max_corpus_bytes >= 0, "data.max_corpus_bytes", "must be >= 0 (0 = whole corpus)");
  need(c.data.val_fraction > 0 && c.data.val_fraction <= 0.5, "data.val_fraction",
       "must be in (0, 0.5]");

  need(c.metrics.spike_window >= 2, "metrics.spike_window", "must be >= 2");
  need(c.metrics.spike_zscore > 0, "metrics.spike_zscore", "must be > 0");
  need(c.metrics.spike_min_relative >= 0, "metrics.spike_min_relative", "must be >= 0");
  need(c.metrics.spike_min_history >= 2, "metrics.spike_min_history", "must be >= 2");
  need(c.metrics.diagnostics_every >= 0, "metrics.diagnostics_every",
       "must be >= 0 (0: no optimizer diagnostics)");
  for (size_t i = 0; i < c.metrics.target_losses.size(); ++i)
    if (!(c.metrics.target_losses[i] > 0))
      p.push_back({"metrics.target_losses[" + std::to_string(i) + "]", "must be > 0"});
  return p;
}

TrainConfig load_train_config(const std::string& path) {
  return train_config_from_json(read_config_document(path));
}

}  // namespace trainer_core
