// The trainer on the real corpus: learning, resume, accumulation, divergence.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "test_configs.h"
#include "trainer_core/data/prepare_data.h"
#include "trainer_core/optim/schedule.h"
#include "trainer_core/train/checkpoint.h"
#include "trainer_core/train/eval_schedule.h"
#include "trainer_core/train/trainer.h"

using namespace trainer_core;

namespace {

struct Recorder : TrainObserver {
  std::vector<StepMetrics> steps;
  std::vector<EvalMetrics> evals;
  std::vector<int64_t> checkpoints;
  std::atomic<bool>* stop = nullptr;
  int64_t stop_at = -1;
  void on_step(const StepMetrics& m) override {
    steps.push_back(m);
    if (stop && m.step == stop_at) *stop = true;
  }
  void on_eval(const EvalMetrics& m) override { evals.push_back(m); }
  void on_checkpoint(int64_t step, const std::string&) override { checkpoints.push_back(step); }
};

// Runs c until step stop_at has completed, as a SIGTERM at that point would (checkpoint, stop).
RunSummary run_until_stopped(const TrainConfig& c, int64_t stop_at, Recorder& rec) {
  std::atomic<bool> stop{false};
  rec.stop = &stop;
  rec.stop_at = stop_at;
  const RunSummary s = Trainer(c, &rec).run(&stop);
  rec.stop = nullptr;
  return s;
}

TEST(Training, BothOptimizersLearnTheRealCorpus) {
  const std::string dir = test_configs::temp_dir("learn");
  for (const std::string opt : {"adamw", "muon"}) {
    TrainConfig c = test_configs::micro(dir);
    c.optimizer.name = *parse_name<OptimizerKind>(opt);
    c.training.max_steps = 60;
    c.metrics.target_losses = {4.0};
    Recorder rec;
    const RunSummary s = Trainer(c, &rec).run();
    EXPECT_EQ(s.outcome, RunOutcome::kSucceeded);
    ASSERT_GE(rec.evals.size(), 2u);
    EXPECT_NEAR(rec.evals.front().val_loss, std::log(256.0), 0.3) << opt << ": untrained ≈ uniform";
    EXPECT_LT(s.final_val_loss, 3.3) << opt << " did not learn";
    EXPECT_EQ(rec.steps.size(), 60u);
    EXPECT_EQ(s.tokens_seen, 60 * 256);
    EXPECT_TRUE(s.targets.at(0).reached);
    EXPECT_GT(s.peak_memory_bytes, s.num_params * 4 * 3) << "weights + grads + state at least";
  }
  std::filesystem::remove_all(dir);
}

// WSD in real runs, for both optimizers and every shipped Muon variant (each Newton-Schulz
// coefficient set, each RMS matching): every step trains at the schedule's lr, pinned at each
// boundary (warm-up's last step, the stable phase's first and last, the decay's first, the run's
// last at lr * min_lr_ratio), and the run ends where it should.
TEST(Training, AWsdScheduleSetsTheLrOfEveryStepForEveryOptimizerVariant) {
  const std::string dir = test_configs::temp_dir("wsd");
  std::vector<std::pair<std::string, TrainConfig>> variants;
  TrainConfig base = test_configs::micro(dir);
  base.training.max_steps = 20;
  base.training.eval_every = 20;
  base.schedule.kind = ScheduleKind::kWsd;
  base.schedule.warmup_steps = 4;
  base.schedule.decay_fraction = 0.25;  // 5 steps: 15..19
  base.schedule.min_lr_ratio = 0.1;
  variants.push_back({"adamw", base});
  for (const auto& [set, name] : names_of(NsCoefficientSet{})) {
    TrainConfig c = base;
    c.optimizer.name = OptimizerKind::kMuon;
    c.optimizer.lr = 1e-2;
    c.optimizer.muon.ns_coefficients = set;
    variants.push_back({std::string("muon ns ") + name, c});
  }
  for (const auto& [matching, name] : names_of(RmsMatching{})) {
    TrainConfig c = base;
    c.optimizer.name = OptimizerKind::kMuon;
    c.optimizer.lr = 1e-2;
    c.optimizer.muon.rms_matching = matching;
    variants.push_back({std::string("muon rms ") + name, c});
  }
  for (const auto& [label, c] : variants) {
    SCOPED_TRACE(label);
    Recorder rec;
    const RunSummary s = Trainer(c, &rec).run();
    ASSERT_EQ(s.outcome, RunOutcome::kSucceeded) << s.message;
    ASSERT_EQ(rec.steps.size(), 20u);
    const double peak = c.optimizer.lr;
    // StepMetrics::step counts steps done: the lr of 0-based step i is in steps[i].
    const auto lr_of = [&](int i) { return rec.steps[size_t(i)].lr; };
    EXPECT_DOUBLE_EQ(lr_of(0), peak / 4);
    EXPECT_DOUBLE_EQ(lr_of(3), peak);                                // warm-up's last step
    EXPECT_DOUBLE_EQ(lr_of(4), peak);                                // stable
    EXPECT_DOUBLE_EQ(lr_of(14), peak);                               // the stable phase's last step
    EXPECT_NEAR(lr_of(15), peak * (0.1 + 0.9 * 0.8), peak * 1e-12);  // linear, p = 1/5
    EXPECT_NEAR(lr_of(19), peak * 0.1, peak * 1e-12);                // the floor, at the end
    for (int i = 0; i < 20; ++i)
      EXPECT_NEAR(lr_of(i), scheduled_lr(peak, i, lr_schedule_of(c)), peak * 1e-12) << i;
  }
  std::filesystem::remove_all(dir);
}

// Forks (trainer_core/train/fork.h): a run kept a checkpoint at step 8; a fork of it that changes
// nothing continues bit-identically to the parent, having replayed the parent's first 8 steps; a
// fork that decays early (WSD over steps 8..11) shares the prefix and then trains at its own lr; a
// fork that changes a frozen setting is refused with each setting's path.
TEST(Training, AForkStartsFromItsParentsKeptCheckpointAndANoChangeForkIsBitIdentical) {
  const std::string dir = test_configs::temp_dir("fork");
  TrainConfig parent = test_configs::micro(dir);
  parent.training.max_steps = 16;
  parent.training.checkpoint_dir = dir + "/parent";
  parent.training.checkpoint_at_steps = {8};
  Recorder parent_rec;
  ASSERT_EQ(Trainer(parent, &parent_rec).run().outcome, RunOutcome::kSucceeded);
  const std::string branch = kept_checkpoint_path(dir + "/parent", 8);
  ASSERT_TRUE(std::filesystem::exists(branch));

  TrainConfig same = parent;
  same.training.checkpoint_dir = dir + "/same";
  same.training.checkpoint_at_steps = {};
  same.training.fork_from = branch;
  Recorder same_rec;
  const RunSummary s = Trainer(same, &same_rec).run();
  ASSERT_EQ(s.outcome, RunOutcome::kSucceeded) << s.message;
  ASSERT_EQ(same_rec.steps.size(), parent_rec.steps.size());
  for (size_t i = 0; i < parent_rec.steps.size(); ++i) {
    EXPECT_EQ(same_rec.steps[i].replayed, i < 8) << i;
    EXPECT_EQ(same_rec.steps[i].train_loss, parent_rec.steps[i].train_loss)
        << "step " << i;  // bit for bit
    EXPECT_EQ(same_rec.steps[i].grad_norm, parent_rec.steps[i].grad_norm) << "step " << i;
  }
  EXPECT_EQ(s.final_val_loss, parent_rec.evals.back().val_loss);

  TrainConfig cooldown = same;
  cooldown.training.checkpoint_dir = dir + "/cooldown";
  cooldown.training.max_steps = 12;
  cooldown.schedule.kind = ScheduleKind::kWsd;
  cooldown.schedule.decay_fraction = 4.0 / 12;  // steps 8..11
  cooldown.schedule.warmup_steps = 0;
  Recorder cooldown_rec;
  ASSERT_EQ(Trainer(cooldown, &cooldown_rec).run().outcome, RunOutcome::kSucceeded);
  ASSERT_EQ(cooldown_rec.steps.size(), 12u);
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(cooldown_rec.steps[size_t(i)].train_loss, parent_rec.steps[size_t(i)].train_loss);
  for (int i = 8; i < 12; ++i)
    EXPECT_NEAR(cooldown_rec.steps[size_t(i)].lr,
                scheduled_lr(cooldown.optimizer.lr, i, lr_schedule_of(cooldown)), 1e-15);
  EXPECT_NEAR(cooldown_rec.steps[11].lr, cooldown.optimizer.lr * 0.1, 1e-15);  // annealed

  TrainConfig wider = same;
  wider.training.checkpoint_dir = dir + "/wider";
  wider.model.ffn_hidden = 128;
  wider.seed = 2;
  try {
    Trainer(wider, nullptr).run();
    ADD_FAILURE() << "a fork changed the model and the seed";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("model.ffn_hidden: the parent has 64, this fork 128; a fork may not "
                        "change it"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("seed: the parent has 1, this fork 2"), std::string::npos) << what;
    EXPECT_EQ(e.problems.size(), 2u) << what;
  }
  TrainConfig orphan = same;
  orphan.training.checkpoint_dir = dir + "/orphan";
  orphan.training.fork_from = kept_checkpoint_path(dir + "/parent", 5);  // none kept there
  try {
    Trainer(orphan, nullptr).run();
    ADD_FAILURE() << "a fork started from a checkpoint that does not exist";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no checkpoint at " + orphan.training.fork_from),
              std::string::npos)
        << e.what();
  }
  std::filesystem::remove_all(dir);
}

// Mixed precision: the tiny preset in bf16 (GEMM operands rounded to bf16, fp32 master weights
// and optimizer state) follows the fp32 run over 200 steps. Tolerance: every 20-step mean of the
// training loss within 0.5% of fp32's, and the final val loss (measured: 0.01%, both). The runs
// must differ (the bf16 path ran) and both must learn.
TEST(Training, Bf16RunOfTheTinyPresetTracksTheFp32Run) {
  const std::string dir = test_configs::temp_dir("bf16");
  TrainConfig c = test_configs::micro(dir);
  c.model = ModelConfig();  // the tiny preset's dims, from the preset
  c.model.preset = "tiny";
  c.model.seq_len = 64;
  c.optimizer.name = OptimizerKind::kMuon;
  c.training.max_steps = 200;
  c.training.micro_batch = 8;
  c.training.batch_tokens = 8 * 64;
  c.training.eval_every = 100;
  c.training.eval_tokens = 8192;
  Recorder fp32_steps, bf16_steps;
  const RunSummary fp32 = Trainer(c, &fp32_steps).run();
  c.model.precision = Precision::kBf16;
  const RunSummary bf16 = Trainer(c, &bf16_steps).run();
  ASSERT_EQ(fp32.outcome, RunOutcome::kSucceeded) << fp32.message;
  ASSERT_EQ(bf16.outcome, RunOutcome::kSucceeded) << bf16.message;
  ASSERT_EQ(fp32_steps.steps.size(), 200u);
  ASSERT_EQ(bf16_steps.steps.size(), 200u);
  bool differ = false;
  double worst = 0;
  for (size_t w = 0; w < 200; w += 20) {
    double a = 0, b = 0;
    for (size_t i = w; i < w + 20; ++i) {
      a += fp32_steps.steps[i].train_loss;
      b += bf16_steps.steps[i].train_loss;
      differ = differ || fp32_steps.steps[i].train_loss != bf16_steps.steps[i].train_loss;
    }
    EXPECT_NEAR(b / a, 1.0, 0.005) << "steps " << w << "-" << w + 19;
    worst = std::max(worst, std::abs(b / a - 1.0));
  }
  EXPECT_TRUE(differ) << "bf16 and fp32 runs are identical: the bf16 path did not run";
  std::printf(
      "FIGURE bf16 vs fp32, tiny/Muon 200 steps: largest 20-step train-loss deviation "
      "%.2f%%, final val loss %.4f vs %.4f\n",
      100 * worst, bf16.final_val_loss, fp32.final_val_loss);
  EXPECT_NEAR(bf16.final_val_loss / fp32.final_val_loss, 1.0, 0.005);
  EXPECT_LT(fp32.final_val_loss, 2.9) << "did not learn";
  std::filesystem::remove_all(dir);
}

TEST(Training, ResumedRunIsBitIdenticalToAnUninterruptedOne) {
  for (const std::string opt : {"adamw", "muon"}) {
    const std::string dir = test_configs::temp_dir("resume_" + opt);
    TrainConfig c = test_configs::micro(dir);
    c.optimizer.name = *parse_name<OptimizerKind>(opt);
    c.metrics.spike_window = 8;
    c.metrics.target_losses = {3.5};

    Recorder whole;
    const RunSummary full = Trainer(c, &whole).run();

    c.training.checkpoint_dir = dir + "/ckpt";
    Recorder first;
    const RunSummary part = run_until_stopped(c, 17, first);
    EXPECT_EQ(part.outcome, RunOutcome::kStopped);
    EXPECT_EQ(part.steps_completed, 17);
    ASSERT_FALSE(first.checkpoints.empty());

    Recorder second;  // a new process would do exactly this: same config, same checkpoint_dir
    const RunSummary rest = Trainer(c, &second).run();
    EXPECT_EQ(rest.outcome, RunOutcome::kSucceeded);
    // It first replays the 17 checkpointed steps, then computes 23 new ones: the whole curve.
    ASSERT_EQ(second.steps.size(), 40u);
    for (size_t i = 0; i < second.steps.size(); ++i) {
      EXPECT_EQ(second.steps[i].replayed, i < 17);
      EXPECT_EQ(second.steps[i].step, whole.steps[i].step);
      EXPECT_EQ(second.steps[i].train_loss, whole.steps[i].train_loss)
          << opt << " step " << second.steps[i].step;
      EXPECT_EQ(second.steps[i].grad_norm, whole.steps[i].grad_norm);
    }
    // Replayed evals carry the training time the first attempt measured (the clock time to
    // target reads), and no wall-clock time: the checkpoint does not keep one.
    size_t replayed = 0;
    for (const EvalMetrics& e : second.evals) {
      if (!e.replayed) continue;
      ASSERT_LT(replayed, first.evals.size());
      EXPECT_EQ(e.step, first.evals[replayed].step);
      EXPECT_EQ(e.train_s, first.evals[replayed].train_s) << opt << " eval " << e.step;
      EXPECT_TRUE(std::isnan(e.elapsed_s));
      ++replayed;
    }
    EXPECT_GT(replayed, 0u);
    EXPECT_EQ(rest.final_val_loss, full.final_val_loss);
    EXPECT_EQ(rest.targets.at(0).steps, full.targets.at(0).steps);
    std::filesystem::remove_all(dir);
  }
}

// Time to target is training time: evaluations (here most of the wall time) are not counted.
TEST(Training, TimeToTargetCountsTrainingTimeOnly) {
  const std::string dir = test_configs::temp_dir("train_time");
  TrainConfig c = test_configs::micro(dir);
  c.training.eval_every = 1;
  c.training.eval_tokens = 64 * 1024;  // each eval costs many training steps
  c.metrics.target_losses = {4.5};
  Recorder recorded;
  const RunSummary s = Trainer(c, &recorded).run();
  ASSERT_TRUE(s.targets.at(0).reached);
  EXPECT_LT(s.train_seconds, 0.5 * s.elapsed_seconds) << "the evals should dominate this run";
  EXPECT_GT(s.targets[0].seconds, 0);
  EXPECT_LE(s.targets[0].seconds, s.train_seconds);
  // Each eval record carries both clocks, so targets chosen after the run get a training time too.
  ASSERT_FALSE(recorded.evals.empty());
  for (const EvalMetrics& e : recorded.evals) EXPECT_LE(e.train_s, e.elapsed_s);
  EXPECT_EQ(recorded.evals.back().train_s, s.train_seconds);
  EXPECT_LT(recorded.evals.back().train_s, 0.5 * recorded.evals.back().elapsed_s);
  std::filesystem::remove_all(dir);
}

// training.log_evals adds evaluations at log-spaced steps, early where they are sparse; the
// training itself is the same, step for step (evaluations read held-out tokens only).
TEST(Training, LogSpacedEvaluationsComeAtTheirStepsAndChangeNoTrainingStep) {
  EXPECT_EQ(log_spaced_eval_steps(1000, 8),
            (std::vector<int64_t>{1, 3, 7, 19, 52, 139, 373, 1000}));
  EXPECT_EQ(log_spaced_eval_steps(40, 1), std::vector<int64_t>{40});
  EXPECT_EQ(log_spaced_eval_steps(4, 8), (std::vector<int64_t>{1, 2, 3, 4}))
      << "merged, not repeated";
  const std::string dir = test_configs::temp_dir("log_evals");
  TrainConfig c = test_configs::micro(dir);
  c.training.max_steps = 40;
  c.training.eval_every = 20;
  Recorder plain, dense;
  Trainer(c, &plain).run();
  c.training.log_evals = 6;  // steps 1, 2, 4, 9, 19, 40
  Trainer(c, &dense).run();
  std::vector<int64_t> steps;
  for (const EvalMetrics& e : dense.evals) steps.push_back(e.step);
  EXPECT_EQ(steps, (std::vector<int64_t>{0, 1, 2, 4, 9, 19, 20, 40}));
  ASSERT_EQ(plain.steps.size(), dense.steps.size());
  for (size_t i = 0; i < plain.steps.size(); ++i)
    ASSERT_EQ(plain.steps[i].train_loss, dense.steps[i].train_loss) << "step " << i + 1;
  EXPECT_EQ(plain.evals.back().val_loss, dense.evals.back().val_loss);
  std::filesystem::remove_all(dir);
}

// `trainer prepare-data` turns GCIDE into shards; a run on them (data.train / data.val) is
// bit-identical to a run that names the corpus (same tokens, same split, same seed).
TEST(Training, ARunOnPreparedShardsMatchesTheCorpusRunBitForBit) {
  const std::string dir = test_configs::temp_dir("shards_run");
  TrainConfig c = test_configs::micro(dir);
  c.training.max_steps = 12;
  c.training.eval_every = 4;
  Recorder from_corpus;
  const RunSummary a = Trainer(c, &from_corpus).run();
  PrepareOptions prepare;
  prepare.inputs = {"gcide"};
  prepare.out_dir = dir + "/gcide-shards";
  prepare.tokenizer = "byte";
  prepare.val_split = "tail";
  prepare.val_fraction = c.data.val_fraction;
  prepare.max_bytes = c.data.max_corpus_bytes;
  prepare_data(prepare, nullptr);
  c.data.train = prepare.out_dir + "/train_*.bin";
  c.data.val = prepare.out_dir + "/val_*.bin";
  Recorder from_shards;
  const RunSummary b = Trainer(c, &from_shards).run();
  ASSERT_EQ(from_corpus.steps.size(), from_shards.steps.size());
  for (size_t i = 0; i < from_corpus.steps.size(); ++i)
    EXPECT_EQ(from_corpus.steps[i].train_loss, from_shards.steps[i].train_loss) << "step " << i + 1;
  EXPECT_EQ(a.final_val_loss, b.final_val_loss);
  EXPECT_EQ(a.dataset_id, b.dataset_id) << "the same tokens are the same dataset";
  std::filesystem::remove_all(dir);
}

TEST(Training, CheckpointOfAnotherConfigIsRefused) {
  const std::string dir = test_configs::temp_dir("mismatch");
  TrainConfig c = test_configs::micro(dir);
  c.training.max_steps = 3;
  c.training.checkpoint_dir = dir + "/ckpt";
  Trainer(c, nullptr).run();
  TrainConfig bf16 = c;
  bf16.model.precision = Precision::kBf16;  // another trajectory: not a continuation
  try {
    Trainer(bf16, nullptr).run();
    ADD_FAILURE() << "a bf16 run resumed an fp32 checkpoint";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("different model"), std::string::npos) << e.what();
  }
  c.optimizer.lr *= 2;
  EXPECT_THROW(Trainer(c, nullptr).run(), std::runtime_error);
  std::filesystem::remove_all(dir);
}

// A damaged length field is refused from the file's size, not trusted: found by fuzz_checkpoint,
// where a length of 96 GiB of eval points sent the reader to allocate it.
TEST(Training, ACheckpointWithADamagedLengthIsRefusedWithoutAllocatingIt) {
  const std::string dir = test_configs::temp_dir("damaged_length");
  TrainConfig c = test_configs::micro(dir);
  c.training.max_steps = 12;
  c.training.eval_every = 6;
  c.training.checkpoint_dir = dir + "/ckpt";
  Recorder first;
  ASSERT_EQ(run_until_stopped(c, 7, first).outcome, RunOutcome::kStopped);
  const std::string path = checkpoint_path(c.training.checkpoint_dir);
  uint64_t identity_size = 0;
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(8);  // after the magic
    f.read(reinterpret_cast<char*>(&identity_size), sizeof identity_size);
    f.seekp(std::streamoff(8 + 8 + identity_size + 5 * 8));  // the eval points' count
    const uint64_t huge = uint64_t(1) << 33;
    f.write(reinterpret_cast<const char*>(&huge), sizeof huge);
  }
  try {
    Trainer(c, nullptr).run();
    ADD_FAILURE() << "a damaged checkpoint was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("is corrupt"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

std::map<std::string, double> named(const StepMetrics& m) {
  std::map<std::string, double> out;
  for (const auto& v : m.metrics) out[v.name] = v.value;
  return out;
}

// Optimizer diagnostics measure what they name: on its first step AdamW moves every element with
// a gradient by about lr (m̂/√v̂ = ±1), Muon's scale in force is Moonlight's 0.2·√max(m, k), and
// only every diagnostics_every-th step carries them.
TEST(Training, OptimizerDiagnosticsComeAtTheirCadenceAndMeasureWhatTheyName) {
  const std::string dir = test_configs::temp_dir("diagnostics");
  TrainConfig c = test_configs::micro(dir);
  c.training.max_steps = 6;
  c.metrics.diagnostics_every = 3;
  c.optimizer.weight_decay = 0;
  Recorder adamw;
  Trainer(c, &adamw).run();
  EXPECT_TRUE(adamw.steps[0].metrics.empty());
  const auto third = named(adamw.steps[2]);
  EXPECT_EQ(third.count("opt/lr/muon"), 0u);
  EXPECT_DOUBLE_EQ(third.at("opt/lr/adamw"), double(float(adamw.steps[2].lr)));
  for (const char* group : {"embedding", "blocks.0", "final_norm"})
    for (const char* what : {"grad_norm", "update_rms", "weight_rms"})
      EXPECT_GT(third.at(std::string("opt/") + group + "/" + what), 0) << group << " " << what;
  EXPECT_GT(named(adamw.steps[5]).size(), 5u);

  c.metrics.diagnostics_every = 1;
  c.training.max_steps = 1;
  Recorder first;
  Trainer(c, &first).run();
  const auto step1 = named(first.steps[0]);
  EXPECT_NEAR(step1.at("opt/blocks.0/update_rms"), first.steps[0].lr, 0.02 * first.steps[0].lr);

  c.optimizer.name = OptimizerKind::kMuon;
  c.optimizer.muon.rms_matching = RmsMatching::kMoonlight;
  Recorder muon;
  Trainer(c, &muon).run();
  const auto m = named(muon.steps[0]);
  EXPECT_DOUBLE_EQ(m.at("opt/lr/muon"), double(float(muon.steps[0].lr)));
  // micro: hidden 32, ffn 64, 2 heads; Muon matrices wq, wk, wv, wo (32x32), w_in (64x32), w_out
  // (32x64).
  const double expected_scale = (4 * 0.2 * std::sqrt(32.0) + 2 * 0.2 * std::sqrt(64.0)) / 6;
  EXPECT_NEAR(m.at("opt/muon/rms_scale"), expected_scale, 1e-9);
  EXPECT_GT(m.at("opt/muon/ns_residual"), 0.0);
  EXPECT_LT(m.at("opt/muon/ns_residual"), 1.0);  // Newton-Schulz output is near orthogonal
  std::filesystem::remove_all(dir);
}

TEST(Training, GradientAccumulationMatchesOneLargeBatch) {
  const std::string dir = test_configs::temp_dir("accum");
  TrainConfig big = test_configs::micro(dir);
  big.training.max_steps = 5;
  big.training.micro_batch = 8;
  TrainConfig split = big;
  split.training.micro_batch = 2;  // same 256 tokens per step in 4 micro-batches
  Recorder a, b;
  Trainer(big, &a).run();
  Trainer(split, &b).run();
  ASSERT_EQ(a.steps.size(), b.steps.size());
  for (size_t i = 0; i < a.steps.size(); ++i) {
    EXPECT_NEAR(a.steps[i].train_loss, b.steps[i].train_loss, 1e-4) << "step " << i + 1;
    EXPECT_NEAR(a.steps[i].grad_norm, b.steps[i].grad_norm, 1e-3 * a.steps[i].grad_norm);
  }
  std::filesystem::remove_all(dir);
}

// training.data_parallel: N ranks at micro_batch / N each follow one rank's trajectory (the
// in-process group; GPUs take the same path through NCCL). Tolerance: the fp32 summation order
// of the gradients differs, so losses agree to 1e-4 over 8 steps, not bit for bit.
TEST(Training, DataParallelRanksFollowTheSingleRankTrajectory) {
  const std::string dir = test_configs::temp_dir("data_parallel");
  for (const std::string opt : {"adamw", "muon"}) {
    TrainConfig one = test_configs::micro(dir);
    one.optimizer.name = *parse_name<OptimizerKind>(opt);
    one.training.max_steps = 8;
    one.training.eval_every = 4;
    one.training.micro_batch = 4;  // 2 micro-batches per step: accumulation and ranks together
    TrainConfig four = one;
    four.training.data_parallel = 4;
    Recorder a, b;
    const RunSummary sa = Trainer(one, &a).run();
    const RunSummary sb = Trainer(four, &b).run();
    ASSERT_EQ(sb.outcome, RunOutcome::kSucceeded) << sb.message;
    ASSERT_EQ(a.steps.size(), b.steps.size());
    for (size_t i = 0; i < a.steps.size(); ++i) {
      EXPECT_NEAR(a.steps[i].train_loss, b.steps[i].train_loss, 1e-4) << opt << " step " << i + 1;
      EXPECT_NEAR(a.steps[i].grad_norm, b.steps[i].grad_norm, 1e-3 * a.steps[i].grad_norm);
    }
    EXPECT_NEAR(sa.final_val_loss, sb.final_val_loss, 1e-4) << opt;
    EXPECT_EQ(sa.tokens_seen, sb.tokens_seen);
  }
  std::filesystem::remove_all(dir);
}

// A job may come back on another number of GPUs (a worker with fewer free): its checkpoint holds
// one replica, which every rank loads, and the run continues on the same trajectory.
TEST(Training, CheckpointOfOneRankResumesOnTwoRanks) {
  const std::string dir = test_configs::temp_dir("dp_resume");
  TrainConfig c = test_configs::micro(dir);
  c.optimizer.name = OptimizerKind::kMuon;
  c.training.max_steps = 12;
  c.training.eval_every = 6;
  Recorder whole;
  const RunSummary full = Trainer(c, &whole).run();

  c.training.checkpoint_dir = dir + "/ckpt";
  Recorder first;
  EXPECT_EQ(run_until_stopped(c, 5, first).outcome, RunOutcome::kStopped);
  c.training.data_parallel = 2;
  Recorder second;
  const RunSummary rest = Trainer(c, &second).run();
  ASSERT_EQ(rest.outcome, RunOutcome::kSucceeded) << rest.message;
  ASSERT_EQ(second.steps.size(), whole.steps.size());
  for (size_t i = 5; i < second.steps.size(); ++i)
    EXPECT_NEAR(second.steps[i].train_loss, whole.steps[i].train_loss, 1e-4) << "step " << i + 1;
  EXPECT_NEAR(rest.final_val_loss, full.final_val_loss, 1e-4);
  std::filesystem::remove_all(dir);
}

TEST(Training, DataParallelNeedsAMicroBatchThatSplitsEvenly) {
  TrainConfig c = test_configs::micro("/tmp");
  c.training.data_parallel = 3;  // micro_batch 8
  try {
    Trainer t(c, nullptr);
    FAIL() << "accepted 8 sequences over 3 ranks";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("training.micro_batch"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("data_parallel"), std::string::npos) << e.what();
  }
}

TEST(Training, NonFiniteLossEndsTheRunAsDivergedWithItsStep) {
  const std::string dir = test_configs::temp_dir("nan");
  TrainConfig c = test_configs::micro(dir);
  c.optimizer.lr = 1e30;  // the first update overflows the weights
  c.schedule.warmup_steps = 0;
  c.training.grad_clip = 0;
  Recorder rec;
  const RunSummary s = Trainer(c, &rec).run();
  EXPECT_EQ(s.outcome, RunOutcome::kDiverged);
  EXPECT_EQ(s.diverged_step, 2);
  EXPECT_EQ(s.steps_completed, 1);
  EXPECT_NE(s.message.find("step 2"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
