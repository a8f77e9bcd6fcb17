#include "trainer_core/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <nlohmann/json.hpp>

#include "trainer_core/data/tokenizer.h"
#include "trainer_core/metrics/flops.h"
#include "trainer_core/model/gpt.h"
#include "trainer_core/optim/clip.h"
#include "trainer_core/optim/optimizer.h"
#include "trainer_core/optim/schedule.h"
#include "trainer_core/train/checkpoint.h"

namespace trainer_core {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// What a checkpoint must agree with to be resumed (everything that changes the trajectory).
std::string resume_identity(const TrainConfig& c) {
  const nlohmann::json j = to_json(c);
  nlohmann::json id = {{"seed", j["seed"]}, {"model", j["model"]}, {"optimizer", j["optimizer"]},
                       {"schedule", j["schedule"]}, {"data", j["data"]}};
  id["training"] = {{"max_steps", c.training.max_steps}, {"batch_tokens", c.training.batch_tokens},
                    {"micro_batch", c.training.micro_batch}, {"grad_clip", c.training.grad_clip},
                    {"eval_every", c.training.eval_every}, {"eval_tokens", c.training.eval_tokens}};
  return id.dump();
}

}  // namespace

struct Trainer::State {
  TrainConfig config;
  TrainObserver* observer;
  TrainObserver silent;
  TokenDataset dataset;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Gpt> model;
  std::unique_ptr<Optimizer> optimizer;
  std::vector<int32_t> inputs, targets;

  TrainObserver& obs() { return observer ? *observer : silent; }
  double evaluate();
  void checkpoint(const TrainingProgress& progress);
};

Trainer::Trainer(const TrainConfig& config, TrainObserver* observer,
                 std::optional<TokenDataset> dataset)
    : state_(std::make_unique<State>()) {
  if (auto problems = validate(config); !problems.empty()) throw ConfigError(problems);
  State& s = *state_;
  s.config = config;
  s.observer = observer;
  s.dataset = dataset ? std::move(*dataset) : TokenDataset::load(config.data);
  if (s.dataset.vocab_size() > config.model.vocab_size)
    throw ConfigError({ConfigProblem{"model.vocab_size", "is " + std::to_string(config.model.vocab_size) +
                                                 " but the data's tokenizer has " +
                                                 std::to_string(s.dataset.vocab_size()) + " tokens"}});
  if (s.dataset.val_windows(config.model.seq_len) == 0)
    throw ConfigError({ConfigProblem{"data.val_fraction",
                                     "leaves no validation window of model.seq_len tokens"}});
  s.backend = make_backend(config.backend, config.threads);
  s.model = std::make_unique<Gpt>(config.model, *s.backend);
  s.model->init_weights(config.seed);
  s.optimizer = std::make_unique<Optimizer>(config.optimizer, s.model->params(), s.model->weights(),
                                            s.model->grads(), *s.backend);
  const size_t micro_tokens = size_t(config.training.micro_batch) * config.model.seq_len;
  s.inputs.resize(micro_tokens);
  s.targets.resize(micro_tokens);
}

Trainer::~Trainer() = default;

// Mean loss over the fixed validation windows (the first eval_tokens of the held-out split).
double Trainer::State::evaluate() {
  const int seq = config.model.seq_len, mb = config.training.micro_batch;
  const size_t windows = std::min<size_t>(dataset.val_windows(seq),
                                          size_t(config.training.eval_tokens / seq));
  double total = 0;
  for (size_t w = 0; w < windows; w += mb) {
    const int batch = int(std::min<size_t>(mb, windows - w));
    dataset.val_batch(w, batch, seq, inputs.data(), targets.data());
    total += model->forward_loss(inputs.data(), targets.data(), batch) * batch;
  }
  return total / double(windows);
}

void Trainer::State::checkpoint(const TrainingProgress& progress) {
  const std::string path = checkpoint_path(config.training.checkpoint_dir);
  save_checkpoint(path, resume_identity(config), *model, *optimizer, progress, *backend);
  obs().on_checkpoint(progress.next_step, path);
}

RunSummary Trainer::run(const std::atomic<bool>* stop) {
  State& s = *state_;
  const TrainConfig& c = s.config;
  const int accumulation = c.accumulation_steps(), warmup = c.warmup_steps();
  const int seq = c.model.seq_len, mb = c.training.micro_batch;
  const FlopsBreakdown flops = flops_per_token(c.model);
  const bool checkpoints = !c.training.checkpoint_dir.empty();

  TrainingProgress progress;
  SpikeDetector loss_detector(c.metrics.spike_window, c.metrics.spike_zscore,
                              c.metrics.spike_min_relative, warmup);
  SpikeDetector grad_detector(c.metrics.spike_window, c.metrics.spike_zscore,
                              c.metrics.spike_min_relative, warmup);
  if (checkpoints && load_checkpoint(checkpoint_path(c.training.checkpoint_dir),
                                     resume_identity(c), *s.model, *s.optimizer, progress,
                                     *s.backend)) {
    loss_detector.restore(progress.loss_detector);
    grad_detector.restore(progress.grad_norm_detector);
  }

  s.obs().on_start({c.name, s.model->num_params(), c.training.max_steps, progress.next_step,
                    c.training.batch_tokens, accumulation, s.dataset.train_tokens(),
                    s.dataset.val_tokens(), flops});
  for (StepMetrics m : progress.history) {
    m.replayed = true;
    s.obs().on_step(m);
  }
  for (const EvalPoint& e : progress.evals)
    s.obs().on_eval({e.step, e.val_loss, std::exp(e.val_loss), e.step * c.training.batch_tokens,
                     e.elapsed_seconds, /*replayed=*/true});

  RunSummary summary;
  summary.status = "succeeded";
  const Clock::time_point start = Clock::now();
  const double elapsed_before = progress.elapsed_seconds;
  auto elapsed = [&] { return elapsed_before + seconds_since(start); };
  auto run_eval = [&](int64_t step) {
    const double loss = s.evaluate();
    progress.evals.push_back({step, loss, elapsed()});
    s.obs().on_eval({step, loss, std::exp(loss), progress.tokens_seen, elapsed()});
  };
  if (progress.next_step == 0 && progress.evals.empty()) run_eval(0);
  std::vector<double> expert_load;  // summed over the steps of this process (mean in the summary)
  int64_t load_steps = 0;

  Gpt& model = *s.model;
  for (int64_t step = progress.next_step; step < c.training.max_steps; ++step) {
    const Clock::time_point step_start = Clock::now();
    const double lr = scheduled_lr(c.optimizer.lr, int(step), warmup, c.training.max_steps,
                                   c.schedule.min_lr_ratio);
    model.zero_grads();
    double loss = 0, aux = 0;
    std::vector<double> load(size_t(c.model.ffn == "moe" ? c.model.n_experts : 0), 0.0);
    for (int micro = 0; micro < accumulation; ++micro) {
      s.dataset.sample_train(c.seed, step, /*rank=*/0, micro * mb, mb, seq, s.inputs.data(),
                             s.targets.data());
      loss += model.forward_backward(s.inputs.data(), s.targets.data(), mb, 1.0f / accumulation);
      aux += model.moe_stats().aux_loss / accumulation;
      for (size_t e = 0; e < load.size(); ++e) load[e] += model.moe_stats().expert_load[e] / accumulation;
    }
    loss /= accumulation;
    const double grad_norm =
        clip_by_global_norm(*s.backend, model.grads(), model.num_params(), c.training.grad_clip);
    if (!std::isfinite(loss) || !std::isfinite(grad_norm)) {
      summary.status = "diverged";
      summary.diverged_step = step + 1;
      summary.message = std::string(std::isfinite(loss) ? "gradient norm" : "loss") +
                        " became non-finite at step " + std::to_string(step + 1);
      s.obs().on_step({step + 1, loss, lr, grad_norm, 0, 0, false, 0, progress.tokens_seen, elapsed()});
      progress.last_train_loss = loss;
      break;
    }
    s.optimizer->step(float(lr));

    const double step_seconds = seconds_since(step_start);
    progress.train_seconds += step_seconds;
    progress.tokens_seen += c.training.batch_tokens;
    progress.last_train_loss = loss;
    progress.next_step = step + 1;
    StepMetrics m;
    m.step = step + 1;
    m.train_loss = loss;
    m.lr = lr;
    m.grad_norm = grad_norm;
    m.loss_spike = loss_detector.add(step, loss);
    m.loss_zscore = loss_detector.last_zscore();
    grad_detector.add(step, grad_norm);
    m.grad_norm_zscore = grad_detector.last_zscore();
    m.tokens_per_second = double(c.training.batch_tokens) / step_seconds;
    m.moe_aux_loss = aux;
    if (!load.empty()) {
      m.expert_load_max = *std::max_element(load.begin(), load.end()) * double(load.size());
      if (expert_load.empty()) expert_load.assign(load.size(), 0.0);
      for (size_t e = 0; e < load.size(); ++e) expert_load[e] += load[e];
      ++load_steps;
    }
    m.tokens_seen = progress.tokens_seen;
    m.elapsed_seconds = elapsed();
    progress.history.push_back(m);
    s.obs().on_step(m);

    const bool last = step + 1 == c.training.max_steps;
    if ((step + 1) % c.training.eval_every == 0 || last) run_eval(step + 1);
    const bool stopping = stop && stop->load();
    if (checkpoints && (last || stopping ||
                        (c.training.checkpoint_every > 0 && (step + 1) % c.training.checkpoint_every == 0))) {
      progress.elapsed_seconds = elapsed();
      progress.loss_detector = loss_detector.state();
      progress.grad_norm_detector = grad_detector.state();
      s.checkpoint(progress);
    }
    if (stopping && !last) {
      summary.status = "stopped";
      summary.message = "stopped at step " + std::to_string(step + 1);
      break;
    }
  }

  summary.steps_completed = progress.next_step;
  summary.final_train_loss = progress.last_train_loss;
  if (!progress.evals.empty()) {
    summary.final_val_loss = progress.evals.back().val_loss;
    summary.final_val_ppl = std::exp(summary.final_val_loss);
  }
  summary.loss_spikes = loss_detector.spikes();
  summary.grad_norm_spikes = grad_detector.spikes();
  summary.spike_window = c.metrics.spike_window;
  summary.spike_zscore = c.metrics.spike_zscore;
  summary.spike_min_relative = c.metrics.spike_min_relative;
  summary.targets = find_target_crossings(progress.evals, c.metrics.target_losses,
                                          double(c.training.batch_tokens), flops.train_per_token);
  summary.peak_memory_bytes = s.backend->peak_bytes();
  summary.tokens_seen = progress.tokens_seen;
  summary.tokens_per_second =
      progress.train_seconds > 0 ? double(progress.tokens_seen) / progress.train_seconds : 0;
  summary.achieved_gflops = summary.tokens_per_second * flops.train_per_token / 1e9;
  summary.elapsed_seconds = elapsed();
  summary.num_params = s.model->num_params();
  summary.flops = flops;
  for (double& f : expert_load) f /= double(std::max<int64_t>(1, load_steps));
  summary.expert_load = expert_load;
  if (summary.status == "succeeded") {
    // Inference speed of the trained model (Table 3): a quarter of the context as prompt from the
    // validation split, half of it generated.
    const int prompt_len = std::max(1, seq / 4), gen_len = std::max(1, seq / 2);
    std::vector<int32_t> in(static_cast<size_t>(seq)), tgt(static_cast<size_t>(seq));
    s.dataset.val_batch(0, 1, seq, in.data(), tgt.data());
    GenerationStats g;
    Generator(model, *s.backend).generate({in.begin(), in.begin() + prompt_len}, gen_len, &g);
    summary.inference_tokens_per_second = g.tokens_per_second;
    summary.cache_bytes_per_token = g.cache_bytes_per_token;
    summary.inference_prompt_tokens = g.prompt_tokens;
    summary.inference_generated_tokens = g.generated_tokens;
  }
  s.obs().on_finish(summary);
  return summary;
}

std::string Trainer::generate(const std::string& prompt, int tokens, GenerationStats* stats) {
  State& s = *state_;
  const TrainConfig& c = s.config;
  if (!c.training.checkpoint_dir.empty()) {
    TrainingProgress progress;
    load_checkpoint(checkpoint_path(c.training.checkpoint_dir), resume_identity(c), *s.model, *s.optimizer,
                    progress, *s.backend);
  }
  const auto tokenizer = make_tokenizer(c.data.tokenizer, c.data.bpe_dir);
  const std::vector<int32_t> ids = tokenizer->encode(prompt);
  const std::vector<int32_t> out = Generator(*s.model, *s.backend).generate(ids, tokens, stats);
  return tokenizer->decode(out);
}

}  // namespace trainer_core
