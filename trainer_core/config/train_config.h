// TrainConfig: everything that defines one training run. Plain data; JSON/YAML round-trip and
// validation live in train_config.cpp. Field names here are the config file's keys.
#pragma once

#include <algorithm>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "trainer_core/config/config_enums.h"

namespace trainer_core {

struct ModelConfig {
  std::string preset = "tiny";  // fills the dims below; explicit fields override
  int n_layer = 2;
  int hidden = 128;
  int n_head = 4;
  int ffn_hidden = 512;
  int vocab_size = 256;
  int seq_len = 128;
  Norm norm = Norm::kRmsNorm;
  Activation activation = Activation::kGelu;
  bool tie_embeddings = true;
  double rope_theta = 10000.0;
  double init_std = 0.02;
  double norm_eps = 1e-5;
  // Attention: MHA, or MLA (latent attention, docs/science.md): keys and values come from a
  // shared latent of kv_latent_dim per token; each head's first rope_dim query/key features carry
  // RoPE, the key part shared across heads and computed from the hidden state.
  Attention attention = Attention::kMha;
  int kv_latent_dim = 0;  // 0: hidden / 2
  int q_latent_dim = 0;   // 0: full-rank queries; > 0: low-rank queries through this width
  int rope_dim = 0;       // 0: min(32, head_dim / 2)
  // Feed-forward: dense, or MoE: n_experts GELU experts, top_k routed per token with softmax
  // gates over the chosen logits, an optional always-on shared expert, Switch load balancing.
  Ffn ffn = Ffn::kDense;
  int n_experts = 8;
  int top_k = 2;
  int expert_ffn_hidden = 0;  // 0: ffn_hidden / top_k, so active FFN parameters match dense
  bool shared_expert = false;
  double moe_aux_loss_coef = 0.01;
  // GEMM operands of the linear layers (projections, experts, LM head), forward and backward:
  // fp32, or bf16 (weights and inputs rounded to bf16, products summed in fp32). Master weights,
  // gradients, optimizer state and the other activations stay fp32 either way.
  Precision precision = Precision::kFp32;
  // muP (Tensor Programs V; docs/science.md): with width multiplier m = hidden / mup_base_hidden,
  // block matrices start at init_std / sqrt(m) (readout-like ones: / m), AdamW updates them at
  // lr / m with weight decay wd · m, Muon's update of each is scaled so that its spectral norm
  // does not grow with width, and the logits are multiplied by mup_output_multiplier / m;
  // embeddings and norms keep their rules. At hidden = mup_base_hidden (0: hidden) with output
  // multiplier 1, muP is the standard parametrization exactly.
  Parametrization parametrization = Parametrization::kStandard;
  int mup_base_hidden = 0;
  double mup_output_multiplier = 1.0;  // tuned at the base width; muP only
  double width_multiplier() const {
    if (parametrization != Parametrization::kMup) return 1.0;
    return double(hidden) / double(mup_base_hidden > 0 ? mup_base_hidden : hidden);
  }
  int head_dim() const { return hidden / n_head; }
  int resolved_kv_latent() const { return kv_latent_dim > 0 ? kv_latent_dim : hidden / 2; }
  int resolved_rope_dim() const {
    if (attention != Attention::kMla) return head_dim();
    return rope_dim > 0 ? rope_dim : std::min(32, head_dim() / 2) / 2 * 2;
  }
  int resolved_expert_hidden() const {
    return expert_ffn_hidden > 0 ? expert_ffn_hidden : std::max(1, ffn_hidden / top_k);
  }
};

struct MuonConfig {
  double momentum = 0.95;
  bool nesterov = true;
  NsCoefficientSet ns_coefficients = NsCoefficientSet::kJordan;
  int ns_steps = 5;
  RmsMatching rms_matching = RmsMatching::kMoonlight;
  bool decoupled_weight_decay = true;  // off: Muon matrices get no weight decay
  double dynamic_rms_ema = 0.9;        // per_layer_dynamic: EMA factor of the AdamW-RMS target
};

struct OptimizerConfig {
  OptimizerKind name = OptimizerKind::kAdamW;  // Muon: block matrices on Muon, the rest on AdamW
  double lr = 3e-3;
  // Muon runs only: the learning rate of the parameters AdamW updates (embeddings, head, norms),
  // as in Moonlight and modded-nanogpt. Default (0 in a file): the AdamW lr of the model preset
  // (3e-3 without one), so tuning a Muon lr moves the Muon matrices alone. An AdamW run updates
  // every parameter at lr; its adamw_lr always resolves to lr. (A config built in code and never
  // parsed may keep 0: the optimizer then uses lr.)
  double adamw_lr = 0;
  double weight_decay = 0.1;  // λ for every parameter group that decays (0: none anywhere)
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  MuonConfig muon;
};

struct ScheduleConfig {
  ScheduleKind kind = ScheduleKind::kCosine;
  int warmup_steps = -1;          // -1: use warmup_fraction
  double warmup_fraction = 0.01;  // of max_steps
  double min_lr_ratio = 0.1;      // cosine and wsd decay to lr * min_lr_ratio
  // wsd: the decay takes the run's last decay_fraction of max_steps (rounded, at least 1 step);
  // the stable phase at the peak runs from the end of warm-up to there.
  double decay_fraction = 0.2;
  DecayShape decay_shape = DecayShape::kLinear;
};

struct TrainingConfig {
  // Training length: max_steps, or max_tokens (a token budget; max_steps = max_tokens /
  // batch_tokens, so a batch-size sweep compares runs at equal tokens and at the same point of
  // the schedule). With max_tokens > 0 the resolved max_steps is written beside it; both given
  // must agree.
  int max_steps = 200;
  int64_t max_tokens = 0;
  int64_t batch_tokens = 4096;  // tokens per optimizer step (micro_batch * seq_len * accumulation)
  int micro_batch = 16;         // sequences per forward/backward (over all ranks)
  // Ranks of data parallelism: each takes micro_batch / data_parallel sequences of every
  // micro-batch and gradients are summed, so the trajectory is that of one rank (up to fp32
  // summation order). Backend cuda: one GPU per rank (devices 0..N-1); cpu: N threads sharing
  // the cores (the code path GPUs take, runnable anywhere).
  int data_parallel = 1;
  double grad_clip = 1.0;  // global norm; 0 disables
  // Evaluations: at step 0, every eval_every steps and at the end; or every eval_every_tokens
  // tokens (a multiple of batch_tokens; eval_every = eval_every_tokens / batch_tokens is written
  // beside it, both given must agree), so that every batch size of a sweep is evaluated at the
  // same token positions and tokens to target interpolate over the same gaps.
  int eval_every = 50;
  int64_t eval_every_tokens = 0;
  int64_t eval_tokens = 16384;  // fixed held-out tokens evaluated at each eval point
  // Evaluations beside those: this many at steps spread evenly in log(step) from 1 to the last
  // (train/eval_schedule.h), dense where early target crossings are read; 0: none.
  int log_evals = 0;
  int checkpoint_every = 0;    // 0: only at the end (when checkpoint_dir is set)
  std::string checkpoint_dir;  // empty: no checkpoints
  // Steps whose checkpoint is kept as checkpoint-step-<N>.bin beside the latest one: the branch
  // points forks start from (docs/training.md, "Forks"). Needs checkpoint_dir.
  std::vector<int64_t> checkpoint_at_steps;
  // A fork: the run starts from this checkpoint file of another run (its step, weights,
  // optimizer state and curve so far) and goes on with this config's settings; what a fork may
  // change is checked against the parent's (trainer_core/train/fork.h).
  std::string fork_from;
};

struct DataConfig {
  // Token shards (llm.c / modded-nanogpt format, written by `trainer prepare-data`): a file, a
  // directory of *.bin shards or a glob, for training and for validation. When set, the corpus
  // fields below are not used for data (the tokenizer still decodes for `trainer generate`).
  std::string train;
  std::string val;
  std::string corpus = "gcide";  // gcide (Debian dict-gcide) or a path to a text / .gz file
  TokenizerKind tokenizer = TokenizerKind::kByte;
  std::string cache_dir = ".cache/tokens";
  std::string bpe_dir;           // where encoder.json and vocab.bpe live; empty: search defaults
  int64_t max_corpus_bytes = 0;  // 0: whole corpus
  double val_fraction = 0.005;
};

struct MetricsConfig {
  int spike_window = 128;
  double spike_zscore = 5.0;
  double spike_min_relative = 0.05;
  // Unflagged values the window needs before a step can be flagged (capped at spike_window).
  int spike_min_history = 32;
  std::vector<double> target_losses;
  // Optimizer diagnostics (Optimizer::step) every N steps; 0: none. They cost a copy of the
  // weights and a few reductions on those steps (bench/train_bench states how much).
  int diagnostics_every = 0;
};

// A finished run the coordinator offers in place of training this one (a sweep with `reuse:
// true`, docs/sweeps.md): its job and what its summary says it was trained on and by. The trainer
// takes it only when the data it loads and its own identity are the same (train/reuse.h), and
// then trains nothing. Set at lease time, never in a sweep file; job 0: none offered.
struct ReusableRunConfig {
  int64_t job = 0;
  std::string dataset_id;
  std::string trainer_commit;
  bool trainer_dirty = false;
  std::string trainer_binary_sha256;
};

struct TrainConfig {
  std::string name = "run";
  uint64_t seed = 1;
  std::string backend = "cpu";
  int threads = 0;  // 0: all cores
  ModelConfig model;
  OptimizerConfig optimizer;
  ScheduleConfig schedule;
  TrainingConfig training;
  DataConfig data;
  MetricsConfig metrics;
  ReusableRunConfig reusable_run;

  int accumulation_steps() const;
  int warmup_steps() const;
  int decay_steps() const;  // wsd: the steps of the decay (0 for the other kinds)
};

// One problem found in a config, with its dotted path ("optimizer.muon.ns_steps").
struct ConfigProblem {
  std::string path;
  std::string message;
  std::string to_string() const { return path + ": " + message; }
};

// Thrown by the parsers when a config has problems; what() lists them all, one per line.
struct ConfigError : std::exception {
  std::vector<ConfigProblem> problems;
  std::string text;
  explicit ConfigError(std::vector<ConfigProblem> p);
  const char* what() const noexcept override { return text.c_str(); }
};

// Parses and validates. Unknown keys, wrong types and out-of-range values are all reported.
TrainConfig train_config_from_json(const nlohmann::json& j);
nlohmann::json to_json(const TrainConfig& c);
// Reads a .json, .yaml or .yml file.
TrainConfig load_train_config(const std::string& path);
std::vector<ConfigProblem> validate(const TrainConfig& c);
// Which length is in force, for people: "300 steps of 4096 tokens (from training.max_tokens =
// ...)".
std::string training_length_text(const TrainConfig& c);

}  // namespace trainer_core
