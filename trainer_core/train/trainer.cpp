#include "trainer_core/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "trainer_core/data/tokenizer.h"
#include "trainer_core/metrics/flops.h"
#include "trainer_core/model/gpt.h"
#include "trainer_core/optim/clip.h"
#include "trainer_core/optim/optimizer.h"
#include "trainer_core/optim/schedule.h"
#include "trainer_core/parallel/communicator.h"
#include "trainer_core/train/checkpoint.h"
#include "trainer_core/train/eval_schedule.h"
#include "trainer_core/train/fork.h"
#include "trainer_core/train/reuse.h"
#include "trainer_core/util/trainer_identity.h"

namespace trainer_core {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// What a checkpoint must agree with to be resumed (everything that changes the trajectory).
std::string resume_identity(const TrainConfig& c) {
  const nlohmann::json j = to_json(c);
  nlohmann::json model = j["model"];
  // A field added after checkpoints were written stays out at its default, so that a job
  // checkpointed by the previous release still resumes after an upgrade.
  if (c.model.precision == Precision::kFp32) model.erase("precision");
  if (c.model.mup_output_multiplier == 1.0) model.erase("mup_output_multiplier");
  // muP's rules changed (Muon's width factor, weight decay · m, readout-like router and rope
  // key): a muP checkpoint from before them would not continue the same run.
  if (c.model.parametrization == Parametrization::kMup && c.model.width_multiplier() != 1.0)
    model["mup_rules"] = 2;
  // The WSD fields change nothing of a cosine run (and came after its checkpoints).
  nlohmann::json schedule = j["schedule"];
  if (c.schedule.kind == ScheduleKind::kCosine)
    for (const char* wsd_only : {"kind", "decay_fraction", "decay_shape"}) schedule.erase(wsd_only);
  nlohmann::json id = {{"seed", j["seed"]},
                       {"model", model},
                       {"optimizer", j["optimizer"]},
                       {"schedule", schedule},
                       {"data", j["data"]}};
  id["training"] = {
      {"max_steps", c.training.max_steps},     {"batch_tokens", c.training.batch_tokens},
      {"micro_batch", c.training.micro_batch}, {"grad_clip", c.training.grad_clip},
      {"eval_every", c.training.eval_every},   {"eval_tokens", c.training.eval_tokens}};
  return id.dump();
}

}  // namespace

namespace {

// One data-parallel rank: its own backend (a GPU with backend cuda), model replica, optimizer
// and batch buffers. Replicas start from the same seed and stay identical: gradients are summed
// before every update.
struct Rank {
  int index = 0;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Communicator> communicator;  // null with a single rank
  std::unique_ptr<Gpt> model;
  std::unique_ptr<Optimizer> optimizer;
  std::vector<int32_t> inputs, targets;
  Tensor reduced;  // the scalars summed over ranks: loss, aux loss, expert loads
};

// What one optimizer step measured, identical on every rank after the reduction.
struct StepResult {
  double loss = 0, aux = 0, grad_norm = 0;
  std::vector<double> load;
  std::vector<NamedValue> diagnostics;  // the optimizer's, on diagnostics steps (rank 0 only)
};

}  // namespace

struct Trainer::State {
  TrainConfig config;
  TrainObserver* observer;
  TrainObserver silent;
  TokenDataset dataset;
  std::vector<std::unique_ptr<Rank>> ranks;
  std::vector<int32_t> eval_inputs, eval_targets;

  TrainObserver& obs() { return observer ? *observer : silent; }
  Rank& lead() { return *ranks.front(); }  // evaluates, checkpoints, generates, reports memory
  double evaluate();
  void checkpoint(const TrainingProgress& progress, const std::string& path);
  StepResult train_step(Rank& rank, int64_t step, double lr);
  // Runs fn(rank) for every rank at once (rank 0 on this thread). A rank that throws aborts the
  // group so no peer waits for it; the first real failure is rethrown here.
  void on_all_ranks(const std::function<void(Rank&)>& fn);
};

namespace {

int threads_per_rank(const TrainConfig& c) {
  const int ranks = c.training.data_parallel;
  if (c.backend != "cpu" || ranks == 1) return c.threads;
  const int total =
      c.threads > 0 ? c.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, total / ranks);
}

}  // namespace

Trainer::Trainer(const TrainConfig& config, TrainObserver* observer,
                 std::optional<TokenDataset> dataset)
    : state_(std::make_unique<State>()) {
  if (auto problems = validate(config); !problems.empty()) throw ConfigError(problems);
  State& s = *state_;
  s.config = config;
  s.observer = observer;
  s.dataset = dataset ? std::move(*dataset) : TokenDataset::load(config.data);
  if (s.dataset.vocab_size() > config.model.vocab_size)
    throw ConfigError({ConfigProblem{"model.vocab_size",
                                     "is " + std::to_string(config.model.vocab_size) +
                                         " but the data's tokenizer has " +
                                         std::to_string(s.dataset.vocab_size()) + " tokens"}});
  if (config.data.train.empty() && s.dataset.val_windows(config.model.seq_len) == 0)
    throw ConfigError({ConfigProblem{"data.val_fraction",
                                     "leaves no validation window of model.seq_len tokens"}});
  s.dataset.check(config.model.seq_len, config.model.vocab_size);
  const int n = config.training.data_parallel;
  auto group = n > 1 ? make_group(config.backend, n) : std::vector<std::unique_ptr<Communicator>>{};
  const size_t rank_tokens = size_t(config.training.micro_batch / n) * config.model.seq_len;
  for (int r = 0; r < n; ++r) {
    auto rank = std::make_unique<Rank>();
    rank->index = r;
    rank->backend = make_backend(config.backend, threads_per_rank(config), r);
    if (n > 1) rank->communicator = std::move(group[size_t(r)]);
    rank->model = std::make_unique<Gpt>(config.model, *rank->backend);
    rank->model->init_weights(config.seed);
    rank->optimizer =
        std::make_unique<Optimizer>(config.optimizer, rank->model->params(), rank->model->weights(),
                                    rank->model->grads(), *rank->backend, rank->communicator.get());
    rank->inputs.resize(rank_tokens);
    rank->targets.resize(rank_tokens);
    rank->reduced = Tensor(*rank->backend,
                           2 + size_t(config.model.ffn == Ffn::kMoe ? config.model.n_experts : 0));
    s.ranks.push_back(std::move(rank));
  }
  s.eval_inputs.resize(rank_tokens);
  s.eval_targets.resize(rank_tokens);
}

Trainer::~Trainer() = default;

// Mean loss over the fixed validation windows (the first eval_tokens of the held-out split), on
// the lead rank in chunks of one rank's micro-batch.
double Trainer::State::evaluate() {
  const int seq = config.model.seq_len,
            chunk = config.training.micro_batch / config.training.data_parallel;
  const size_t windows =
      std::min<size_t>(dataset.val_windows(seq), size_t(config.training.eval_tokens / seq));
  lead().backend->bind_thread();
  double total = 0;
  for (size_t w = 0; w < windows; w += chunk) {
    const int batch = int(std::min<size_t>(chunk, windows - w));
    dataset.val_batch(w, batch, seq, eval_inputs.data(), eval_targets.data());
    total += lead().model->forward_loss(eval_inputs.data(), eval_targets.data(), batch) * batch;
  }
  return total / double(windows);
}

void Trainer::State::checkpoint(const TrainingProgress& progress, const std::string& path) {
  save_checkpoint(path, resume_identity(config), *lead().model, *lead().optimizer, progress,
                  *lead().backend);
  obs().on_checkpoint(progress.next_step, path);
}

// Forward/backward over this rank's share of every micro-batch of the step, gradient sum over
// ranks, clipping and the update (skipped when the loss or gradient is not finite).
StepResult Trainer::State::train_step(Rank& rank, int64_t step, double lr) {
  const TrainConfig& c = config;
  const int ranks = c.training.data_parallel, accumulation = c.accumulation_steps();
  const int seq = c.model.seq_len, mb = c.training.micro_batch, local = mb / ranks;
  Gpt& model = *rank.model;
  rank.backend->bind_thread();
  StepResult r;
  r.load.assign(size_t(c.model.ffn == Ffn::kMoe ? c.model.n_experts : 0), 0.0);
  model.zero_grads();
  for (int micro = 0; micro < accumulation; ++micro) {
    // Windows are drawn for the whole micro-batch; this rank takes its contiguous share.
    dataset.sample_train(c.seed, step, /*rank=*/0, micro * mb + rank.index * local, local, seq,
                         rank.inputs.data(), rank.targets.data());
    // In the last micro-batch each block's gradients are summed over ranks as soon as its
    // backward is done, while the blocks before it are still in their backward.
    if (rank.communicator && micro + 1 == accumulation)
      model.set_gradients_ready([&](size_t offset, size_t count) {
        rank.communicator->start_all_reduce_sum(model.grads() + offset, count, *rank.backend);
      });
    struct ClearHook {
      Gpt& model;
      ~ClearHook() { model.set_gradients_ready(nullptr); }
    } clear_hook{model};
    r.loss += model.forward_backward(rank.inputs.data(), rank.targets.data(), local,
                                     1.0f / float(accumulation * ranks));
    r.aux += model.moe_stats().aux_loss / accumulation;
    for (size_t e = 0; e < r.load.size(); ++e)
      r.load[e] += model.moe_stats().expert_load[e] / accumulation;
  }
  r.loss /= accumulation;
  if (rank.communicator) {
    rank.communicator->finish_all_reduces(*rank.backend);
    std::vector<float> scalars{float(r.loss), float(r.aux)};
    for (double l : r.load) scalars.push_back(float(l));
    rank.backend->upload(rank.reduced.data(), scalars.data(), scalars.size());
    rank.communicator->all_reduce_sum(rank.reduced.data(), scalars.size());
    rank.backend->download(scalars.data(), rank.reduced.data(), scalars.size());
    r.loss = double(scalars[0]) / ranks;
    r.aux = double(scalars[1]) / ranks;
    for (size_t e = 0; e < r.load.size(); ++e) r.load[e] = double(scalars[2 + e]) / ranks;
  }
  r.grad_norm =
      clip_by_global_norm(*rank.backend, model.grads(), model.num_params(), c.training.grad_clip);
  const int every = c.metrics.diagnostics_every;
  const bool diagnose =
      every > 0 && (step + 1) % every == 0 && rank.index == 0;  // ranks agree bit for bit
  if (std::isfinite(r.loss) && std::isfinite(r.grad_norm))
    rank.optimizer->step(float(lr), diagnose ? &r.diagnostics : nullptr);
  // The step's work finishes on the device before its clock stops: otherwise the optimizer's
  // kernels, still queued, would be counted in the next step's time (tokens/s per step).
  rank.backend->synchronize();
  return r;
}

void Trainer::State::on_all_ranks(const std::function<void(Rank&)>& fn) {
  if (ranks.size() == 1) return fn(lead());
  std::vector<std::exception_ptr> failures(ranks.size()), aborted(ranks.size());
  auto guarded = [&](size_t i) {
    try {
      fn(*ranks[i]);
    } catch (const GroupAborted&) {
      aborted[i] = std::current_exception();
    } catch (...) {
      failures[i] = std::current_exception();
      ranks[i]->communicator->abort();
    }
  };
  std::vector<std::thread> threads;
  for (size_t i = 1; i < ranks.size(); ++i) threads.emplace_back(guarded, i);
  guarded(0);
  for (auto& t : threads) t.join();
  for (auto& f : failures)
    if (f) std::rethrow_exception(f);
  for (auto& f : aborted)
    if (f) std::rethrow_exception(f);
}

// One call of run(): what it resumes from and keeps up to date (the progress a checkpoint holds,
// the spike detectors, the clocks, the experts' load) and the summary it builds, with run()'s
// steps as methods. Lives on run()'s stack; holds the trainer's state by reference.
struct Trainer::Run {
  State& s;
  const TrainConfig& c;
  FlopsBreakdown flops;
  const bool checkpoints;
  TrainingProgress progress;
  SpikeDetector loss_detector, grad_detector;
  Clock::time_point start;
  double elapsed_before = 0;        // of the attempts before this one (from the checkpoint)
  std::vector<double> expert_load;  // summed over the steps of this process (mean in the summary)
  int64_t load_steps = 0;
  RunSummary summary;
  KeepRequests keep_requests;  // steps forks submitted since this attempt started need kept

  explicit Run(State& state)
      : s(state),
        c(state.config),
        flops(flops_per_token(state.config.model)),
        checkpoints(!state.config.training.checkpoint_dir.empty()),
        loss_detector(c.metrics.spike_window, c.metrics.spike_zscore, c.metrics.spike_min_relative,
                      c.warmup_steps(), c.metrics.spike_min_history),
        grad_detector(c.metrics.spike_window, c.metrics.spike_zscore, c.metrics.spike_min_relative,
                      c.warmup_steps(), c.metrics.spike_min_history),
        keep_requests(state.config.training.checkpoint_dir) {
    flops.optimizer_per_step = optimizer_flops_per_step(s.lead().model->params(), c.optimizer);
    summary.outcome = RunOutcome::kSucceeded;
  }

  double elapsed() const { return elapsed_before + seconds_since(start); }
  void resume();
  bool load(const std::string& path, const std::string& identity);  // on every rank
  void replay();
  void evaluate(int64_t step);
  bool train(int64_t step);  // false: the run diverged at this step
  void save_checkpoint(const std::string& path);
  void summarize();
  void measure_inference();
};

// From the checkpoint in checkpoint_dir, when it holds one of this config; else, for a fork
// (training.fork_from), from its parent's checkpoint when fork.h allows. A fork that has
// checkpointed itself resumes from its own.
void Trainer::Run::resume() {
  if (checkpoints && load(checkpoint_path(c.training.checkpoint_dir), resume_identity(c))) return;
  const std::string& parent = c.training.fork_from;
  if (parent.empty()) return;
  const std::string identity = checkpoint_identity(parent);
  if (auto refusals = fork_refusals(identity, resume_identity(c)); !refusals.empty())
    throw ConfigError(std::move(refusals));
  load(parent, identity);
  if (progress.next_step > c.training.max_steps)
    throw ConfigError(
        {{"training.max_steps", "the fork's parent (" + parent + ") is at step " +
                                    std::to_string(progress.next_step) + ", past this fork's " +
                                    std::to_string(c.training.max_steps)}});
}

bool Trainer::Run::load(const std::string& path, const std::string& identity) {
  bool loaded_any = false;
  for (auto& rank : s.ranks) {
    TrainingProgress loaded;
    loaded_any =
        load_checkpoint(path, identity, *rank->model, *rank->optimizer, loaded, *rank->backend);
    if (rank->index == 0) progress = std::move(loaded);
  }
  if (loaded_any) {
    loss_detector.restore(progress.loss_detector);
    grad_detector.restore(progress.grad_norm_detector);
  }
  return loaded_any;
}

// The start, then the steps and evals the checkpoint holds, so the observer sees the whole curve
// whoever computed its first part; the clock starts after them.
void Trainer::Run::replay() {
  s.obs().on_start({c.name, s.lead().model->num_params(), c.training.max_steps, progress.next_step,
                    c.training.batch_tokens, c.accumulation_steps(), s.dataset.train_tokens(),
                    s.dataset.val_tokens(), flops});
  for (StepMetrics m : progress.history) {
    m.replayed = true;
    s.obs().on_step(m);
  }
  for (const EvalPoint& e : progress.evals)
    s.obs().on_eval({e.step, e.val_loss, std::exp(e.val_loss), e.step * c.training.batch_tokens,
                     /*elapsed_s=*/std::numeric_limits<double>::quiet_NaN(), e.train_seconds,
                     /*replayed=*/true});
  start = Clock::now();
  elapsed_before = progress.elapsed_seconds;
}

void Trainer::Run::evaluate(int64_t step) {
  const double loss = s.evaluate();
  // Time to target counts training time only: evaluations are not part of the method's cost.
  progress.evals.push_back({step, loss, progress.train_seconds});
  s.obs().on_eval(
      {step, loss, std::exp(loss), progress.tokens_seen, elapsed(), progress.train_seconds});
}

bool Trainer::Run::train(int64_t step) {
  const Clock::time_point step_start = Clock::now();
  const double lr = scheduled_lr(c.optimizer.lr, int(step), lr_schedule_of(c));
  std::vector<StepResult> results(s.ranks.size());
  s.on_all_ranks([&](Rank& rank) { results[size_t(rank.index)] = s.train_step(rank, step, lr); });
  const StepResult& r = results.front();
  const double loss = r.loss, aux = r.aux, grad_norm = r.grad_norm;
  const std::vector<double>& load = r.load;
  if (!std::isfinite(loss) || !std::isfinite(grad_norm)) {
    summary.outcome = RunOutcome::kDiverged;
    summary.diverged_step = step + 1;
    summary.message = std::string(std::isfinite(loss) ? "gradient norm" : "loss") +
                      " became non-finite at step " + std::to_string(step + 1);
    StepMetrics last;
    last.step = step + 1;
    last.train_loss = loss;
    last.lr = lr;
    last.grad_norm = grad_norm;
    last.tokens = progress.tokens_seen;
    last.elapsed_s = elapsed();
    s.obs().on_step(last);
    progress.last_train_loss = loss;
    return false;
  }

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
  if (!load.empty()) {
    // The balance loss (not in train_loss) and each expert's share of routed slots x n_experts
    // (1 = even), so that a collapse onto few experts shows as a curve.
    m.metrics.push_back({"moe/balance_loss", aux});
    m.metrics.push_back(
        {"moe/load_max", *std::max_element(load.begin(), load.end()) * double(load.size())});
    for (size_t e = 0; e < load.size(); ++e)
      m.metrics.push_back({"moe/load/expert" + std::to_string(e), load[e] * double(load.size())});
    if (expert_load.empty()) expert_load.assign(load.size(), 0.0);
    for (size_t e = 0; e < load.size(); ++e) expert_load[e] += load[e];
    ++load_steps;
  }
  m.metrics.insert(m.metrics.end(), r.diagnostics.begin(), r.diagnostics.end());
  m.tokens = progress.tokens_seen;
  m.elapsed_s = elapsed();
  progress.history.push_back(m);
  s.obs().on_step(m);
  return true;
}

void Trainer::Run::save_checkpoint(const std::string& path) {
  progress.elapsed_seconds = elapsed();
  progress.loss_detector = loss_detector.state();
  progress.grad_norm_detector = grad_detector.state();
  s.checkpoint(progress, path);
}

void Trainer::Run::summarize() {
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
  summary.spike_min_history = c.metrics.spike_min_history;
  summary.targets = find_target_crossings(progress.evals, c.metrics.target_losses,
                                          double(c.training.batch_tokens), flops);
  summary.peak_memory_bytes = s.lead().backend->device_peak_bytes();  // per rank (per GPU)
  summary.tokens_seen = progress.tokens_seen;
  summary.tokens_per_second =
      progress.train_seconds > 0 ? double(progress.tokens_seen) / progress.train_seconds : 0;
  summary.achieved_gflops = summary.tokens_per_second * flops.train_per_token / 1e9;
  summary.elapsed_seconds = elapsed();
  summary.train_seconds = progress.train_seconds;
  summary.num_params = s.lead().model->num_params();
  summary.flops = flops;
  for (double& f : expert_load) f /= double(std::max<int64_t>(1, load_steps));
  summary.expert_load = expert_load;
  const DatasetProvenance& data = s.dataset.provenance();
  summary.dataset_id = data.id;
  summary.dataset_source = data.source;
  summary.dataset_val = data.val;
  summary.dataset_manifest = data.manifest;
  summary.dataset_train_tokens = int64_t(s.dataset.train_tokens());
  summary.dataset_val_tokens = int64_t(s.dataset.val_tokens());
  const TrainerIdentity& trainer = trainer_identity();
  summary.trainer_commit = trainer.commit;
  summary.trainer_dirty = trainer.dirty;
  summary.trainer_binary_sha256 = trainer.binary_sha256;
}

// Inference speed of the trained model (Table 3): a quarter of the context as prompt from the
// validation split, half of it generated.
void Trainer::Run::measure_inference() {
  const int seq = c.model.seq_len;
  const int prompt_len = std::max(1, seq / 4), gen_len = std::max(1, seq / 2);
  std::vector<int32_t> in(static_cast<size_t>(seq)), tgt(static_cast<size_t>(seq));
  s.dataset.val_batch(0, 1, seq, in.data(), tgt.data());
  GenerationStats g;
  s.lead().backend->bind_thread();
  Generator(*s.lead().model, *s.lead().backend)
      .generate({in.begin(), in.begin() + prompt_len}, gen_len, &g);
  summary.inference_tokens_per_second = g.tokens_per_second;
  summary.cache_bytes_per_token = g.cache_bytes_per_token;
  summary.inference_prompt_tokens = g.prompt_tokens;
  summary.inference_generated_tokens = g.generated_tokens;
}

RunSummary Trainer::run(const std::atomic<bool>* stop) {
  const TrainConfig& c = state_->config;
  if (c.reusable_run.job > 0) {
    const DatasetProvenance& data = state_->dataset.provenance();
    const std::vector<std::string> mismatches =
        reuse_mismatches(c.reusable_run, data, trainer_identity());
    if (mismatches.empty()) {
      RunSummary reused = reused_run_summary(c.reusable_run, data, trainer_identity());
      state_->obs().on_finish(reused);
      return reused;
    }
    // Trained after all; the job's log says why the offer was declined.
    for (const std::string& why : mismatches)
      std::fprintf(stderr, "not reusing job %lld: %s\n", (long long)c.reusable_run.job,
                   why.c_str());
  }
  Run r(*state_);
  r.resume();
  r.replay();
  if (r.progress.next_step == 0 && r.progress.evals.empty()) r.evaluate(0);
  const EvalSchedule evals(c.training);
  for (int64_t step = r.progress.next_step; step < c.training.max_steps; ++step) {
    if (!r.train(step)) break;  // diverged
    const bool last = step + 1 == c.training.max_steps;
    if (evals.evaluates_at(step + 1)) r.evaluate(step + 1);
    const bool stopping = stop && stop->load();
    if (r.checkpoints &&
        (last || stopping ||
         (c.training.checkpoint_every > 0 && (step + 1) % c.training.checkpoint_every == 0)))
      r.save_checkpoint(checkpoint_path(c.training.checkpoint_dir));
    const auto& kept = c.training.checkpoint_at_steps;
    const bool branch_point = std::find(kept.begin(), kept.end(), step + 1) != kept.end() ||
                              (r.checkpoints && r.keep_requests.wants(step + 1));
    if (branch_point) r.save_checkpoint(kept_checkpoint_path(c.training.checkpoint_dir, step + 1));
    if (stopping && !last) {
      r.summary.outcome = RunOutcome::kStopped;
      r.summary.message = "stopped at step " + std::to_string(step + 1);
      break;
    }
  }
  r.summarize();
  if (r.summary.outcome == RunOutcome::kSucceeded) r.measure_inference();
  state_->obs().on_finish(r.summary);
  return r.summary;
}

std::string Trainer::generate(const std::string& prompt, int tokens, GenerationStats* stats) {
  State& s = *state_;
  const TrainConfig& c = s.config;
  if (!c.training.checkpoint_dir.empty()) {
    TrainingProgress progress;
    load_checkpoint(checkpoint_path(c.training.checkpoint_dir), resume_identity(c), *s.lead().model,
                    *s.lead().optimizer, progress, *s.lead().backend);
  }
  const auto tokenizer = make_tokenizer(name_of(c.data.tokenizer), c.data.bpe_dir);
  const std::vector<int32_t> ids = tokenizer->encode(prompt);
  const std::vector<int32_t> out =
      Generator(*s.lead().model, *s.lead().backend).generate(ids, tokens, stats);
  return tokenizer->decode(out);
}

}  // namespace trainer_core
