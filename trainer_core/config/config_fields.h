// One description of every TrainConfig field: its key, its member and, where the field alone
// decides, its rule (an enum's names are its rule: config_enums.h). Reading
// (train_config_from_json), writing (to_json) and validation all walk these lists, so a new field
// is one line here (plus its member and default in train_config.h). Rules that involve several
// fields stay in validate(). Private to trainer_core/config/.
#pragma once

#include <cstdio>
#include <initializer_list>
#include <optional>
#include <string>

#include "trainer_core/config/train_config.h"

namespace trainer_core::config_fields {

inline std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// Rules: each says what is wrong with a value, or nothing.
struct AtLeast {
  double lo;
  const char* note = "";  // what the boundary value means, e.g. " (0 = all cores)"
  template <typename T>
  std::optional<std::string> operator()(const T& v) const {
    if (double(v) >= lo) return std::nullopt;
    return "must be >= " + number_text(lo) + note;
  }
};
struct Above {
  double lo;
  template <typename T>
  std::optional<std::string> operator()(const T& v) const {
    if (double(v) > lo) return std::nullopt;
    return "must be > " + number_text(lo);
  }
};
// lo <= v < hi, or lo <= v <= hi with `closed`.
struct Within {
  double lo, hi;
  bool closed = false;
  template <typename T>
  std::optional<std::string> operator()(const T& v) const {
    if (double(v) >= lo && (closed ? double(v) <= hi : double(v) < hi)) return std::nullopt;
    return "must be in [" + number_text(lo) + ", " + number_text(hi) + (closed ? "]" : ")");
  }
};
struct OneOf {
  std::initializer_list<const char*> allowed;
  std::optional<std::string> operator()(const std::string& v) const {
    std::string list;
    for (const char* a : allowed) {
      if (v == a) return std::nullopt;
      list += (list.empty() ? "" : ", ") + std::string(a);
    }
    return "must be one of " + list + ", got '" + v + "'";
  }
};
struct NotEmpty {
  std::optional<std::string> operator()(const std::string& v) const {
    if (!v.empty()) return std::nullopt;
    return std::string("must not be empty");
  }
};

// The sections. `v(key, member, rules...)` for each field; V is a reader, writer or validator.
template <typename V, typename C>
void top_fields(V& v, C& c) {
  v("name", c.name, NotEmpty{});
  v("seed", c.seed);
  v("backend", c.backend, OneOf{{"cpu", "cuda"}});
  v("threads", c.threads, AtLeast{0, " (0 = all cores)"});
}

template <typename V, typename M>
void model_fields(V& v, M& m) {
  v("preset", m.preset);
  v("n_layer", m.n_layer, AtLeast{1});
  v("hidden", m.hidden, AtLeast{2});
  v("n_head", m.n_head, AtLeast{1});
  v("ffn_hidden", m.ffn_hidden, AtLeast{1});
  v("vocab_size", m.vocab_size, Within{2, 65536, true});
  v("seq_len", m.seq_len, AtLeast{2});
  v("norm", m.norm);
  v("activation", m.activation);
  v("tie_embeddings", m.tie_embeddings);
  v("rope_theta", m.rope_theta, Above{0});
  v("init_std", m.init_std, Above{0});
  v("norm_eps", m.norm_eps, Above{0});
  v("attention", m.attention);
  v("kv_latent_dim", m.kv_latent_dim, AtLeast{0, " (0 = hidden / 2)"});
  v("q_latent_dim", m.q_latent_dim, AtLeast{0, " (0 = full-rank queries)"});
  v("rope_dim", m.rope_dim);
  v("ffn", m.ffn);
  v("n_experts", m.n_experts, AtLeast{1});
  v("top_k", m.top_k);
  v("expert_ffn_hidden", m.expert_ffn_hidden, AtLeast{0, " (0 = ffn_hidden / top_k)"});
  v("shared_expert", m.shared_expert);
  v("moe_aux_loss_coef", m.moe_aux_loss_coef, AtLeast{0});
  v("precision", m.precision);
  v("parametrization", m.parametrization);
  v("mup_base_hidden", m.mup_base_hidden, AtLeast{0, " (0 = hidden: muP equals standard)"});
  v("mup_output_multiplier", m.mup_output_multiplier, Above{0});
}

template <typename V, typename O>
void optimizer_fields(V& v, O& o) {
  v("name", o.name);
  v("lr", o.lr, Above{0});
  v("adamw_lr", o.adamw_lr);
  v("weight_decay", o.weight_decay, AtLeast{0});
  v("beta1", o.beta1, Within{0, 1});
  v("beta2", o.beta2, Within{0, 1});
  v("eps", o.eps, Above{0});
}

template <typename V, typename M>
void muon_fields(V& v, M& m) {
  v("momentum", m.momentum, Within{0, 1});
  v("nesterov", m.nesterov);
  v("ns_coefficients", m.ns_coefficients);
  v("ns_steps", m.ns_steps, AtLeast{1});
  v("rms_matching", m.rms_matching);
  v("decoupled_weight_decay", m.decoupled_weight_decay);
  v("dynamic_rms_ema", m.dynamic_rms_ema, Within{0, 1});
}

template <typename V, typename S>
void schedule_fields(V& v, S& s) {
  v("kind", s.kind);
  v("warmup_steps", s.warmup_steps);
  v("warmup_fraction", s.warmup_fraction, Within{0, 1});
  v("min_lr_ratio", s.min_lr_ratio, Within{0, 1, true});
  v("decay_fraction", s.decay_fraction, Above{0});
  v("decay_shape", s.decay_shape);
}

template <typename V, typename T>
void training_fields(V& v, T& t) {
  v("max_steps", t.max_steps, AtLeast{1});
  v("max_tokens", t.max_tokens);
  v("batch_tokens", t.batch_tokens);
  v("micro_batch", t.micro_batch, AtLeast{1});
  v("data_parallel", t.data_parallel, AtLeast{1});
  v("grad_clip", t.grad_clip, AtLeast{0, " (0 disables clipping)"});
  v("eval_every", t.eval_every, AtLeast{1});
  v("eval_every_tokens", t.eval_every_tokens);
  v("eval_tokens", t.eval_tokens);
  v("log_evals", t.log_evals, AtLeast{0, " (0: none)"});
  v("checkpoint_every", t.checkpoint_every, AtLeast{0});
  v("checkpoint_dir", t.checkpoint_dir);
  v("checkpoint_at_steps", t.checkpoint_at_steps);
  v("fork_from", t.fork_from);
}

template <typename V, typename D>
void data_fields(V& v, D& d) {
  v("train", d.train);
  v("val", d.val);
  v("corpus", d.corpus, NotEmpty{});
  v("tokenizer", d.tokenizer);
  v("cache_dir", d.cache_dir);
  v("bpe_dir", d.bpe_dir);
  v("max_corpus_bytes", d.max_corpus_bytes, AtLeast{0, " (0 = whole corpus)"});
  v("val_fraction", d.val_fraction);
}

template <typename V, typename M>
void metrics_fields(V& v, M& m) {
  v("spike_window", m.spike_window, AtLeast{2});
  v("spike_zscore", m.spike_zscore, Above{0});
  v("spike_min_relative", m.spike_min_relative, AtLeast{0});
  v("spike_min_history", m.spike_min_history, AtLeast{2});
  v("diagnostics_every", m.diagnostics_every, AtLeast{0, " (0: no optimizer diagnostics)"});
  v("target_losses", m.target_losses);
}

template <typename V, typename R>
void reusable_run_fields(V& v, R& r) {
  v("job", r.job, AtLeast{0, " (0: none offered)"});
  v("dataset_id", r.dataset_id);
  v("trainer_commit", r.trainer_commit);
  v("trainer_dirty", r.trainer_dirty);
  v("trainer_binary_sha256", r.trainer_binary_sha256);
}

// Every section of a config with its key, for visitors that treat sections alike (the writer and
// the validator); the reader walks them itself, because presets and lr defaults sit between them.
template <typename V, typename C>
void all_sections(V& v, C& c) {
  top_fields(v, c);
  v.section("model", [&](V& s) { model_fields(s, c.model); });
  v.section("optimizer", [&](V& s) {
    optimizer_fields(s, c.optimizer);
    s.section("muon", [&](V& m) { muon_fields(m, c.optimizer.muon); });
  });
  v.section("schedule", [&](V& s) { schedule_fields(s, c.schedule); });
  v.section("training", [&](V& s) { training_fields(s, c.training); });
  v.section("data", [&](V& s) { data_fields(s, c.data); });
  v.section("metrics", [&](V& s) { metrics_fields(s, c.metrics); });
  v.section("reusable_run", [&](V& s) { reusable_run_fields(s, c.reusable_run); });
}

}  // namespace trainer_core::config_fields
