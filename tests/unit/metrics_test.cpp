#include <gtest/gtest.h>

#include "trainer_core/backend/cpu/cpu_backend.h"
#include "trainer_core/config/presets.h"
#include "trainer_core/metrics/flops.h"
#include "trainer_core/metrics/spike_detector.h"
#include "trainer_core/metrics/target_tracker.h"
#include "trainer_core/model/gpt.h"
#include "trainer_core/optim/optimizer.h"

using namespace trainer_core;

namespace {

// A slowly falling loss with deterministic ±1% jitter.
double base_loss(int step) { return 3.0 - step * 0.001 + 0.03 * ((step * 37) % 7 - 3) / 3.0; }

TEST(SpikeDetector, ConsecutiveFlaggedStepsFormOneSpikeWithPeakAndRecovery) {
  SpikeDetector d(128, 5.0, 0.05, 10, 128);
  int flagged = 0;
  for (int step = 0; step < 400; ++step) {
    double loss = base_loss(step);
    if (step >= 200 && step < 203) loss += 2.0 + (step - 200);  // 5.x, 6.x, 7.x
    if (d.add(step, loss)) ++flagged;
  }
  ASSERT_EQ(d.spikes().size(), 1u);
  const Spike& s = d.spikes()[0];
  EXPECT_EQ(s.start_step, 200);
  EXPECT_EQ(s.peak_step, 202);
  EXPECT_EQ(s.recovery_step, 203);
  EXPECT_EQ(flagged, 3);
}

TEST(SpikeDetector, NeedsBothTheZscoreAndTheRelativeRise) {
  // A huge z-score over a perfectly flat window but only +1%: not a spike (δ = 5%).
  SpikeDetector d(16, 5.0, 0.05, 0, 16);
  for (int i = 0; i < 16; ++i) d.add(i, 2.0 + (i % 2) * 1e-4);
  EXPECT_FALSE(d.add(16, 2.02));
  EXPECT_TRUE(d.add(17, 2.5));
}

TEST(SpikeDetector, NothingIsFlaggedDuringWarmup) {
  SpikeDetector d(16, 5.0, 0.05, 100, 16);
  for (int i = 0; i < 16; ++i) d.add(i, 2.0 + (i % 2) * 1e-3);
  EXPECT_FALSE(d.add(16, 9.0));
  EXPECT_TRUE(d.spikes().empty());
}

// Flagged steps stay out of the window statistics: a first spike must not raise the threshold
// and hide a second one a few dozen steps later.
TEST(SpikeDetector, TwoSpikesSixtyStepsApartAreBothCounted) {
  SpikeDetector d(128, 5.0, 0.05, 10, 32);
  for (int step = 0; step < 400; ++step) {
    double loss = base_loss(step);
    if (step == 200) loss += 3.0;  // a large spike, then a moderate one
    if (step == 260) loss += 0.5;
    d.add(step, loss);
  }
  ASSERT_EQ(d.spikes().size(), 2u);
  EXPECT_EQ(d.spikes()[0].start_step, 200);
  EXPECT_EQ(d.spikes()[1].start_step, 260);
}

// Detection starts once min_history values are in the window, not only when it is full.
TEST(SpikeDetector, AnEarlySpikeAfterWarmupIsCounted) {
  SpikeDetector d(128, 5.0, 0.05, 10, 32);
  for (int step = 0; step < 100; ++step) {
    double loss = base_loss(step);
    if (step == 40) loss += 1.5;
    d.add(step, loss);
  }
  ASSERT_EQ(d.spikes().size(), 1u);
  EXPECT_EQ(d.spikes()[0].start_step, 40);
}

// A lasting jump in level is a spike once, then the window takes the new level in: the detector
// does not flag every later step for ever.
TEST(SpikeDetector, ALastingLevelShiftIsAbsorbed) {
  SpikeDetector d(64, 5.0, 0.05, 0, 32);
  int flagged = 0;
  for (int step = 0; step < 400; ++step)
    flagged += d.add(step, base_loss(step) + (step >= 100 ? 2.0 : 0.0));
  EXPECT_EQ(d.spikes().size(), 1u);
  EXPECT_LE(flagged, 64);
  EXPECT_FALSE(d.add(400, base_loss(400) + 2.0));
}

TEST(TargetCrossing, InterpolatesBetweenTheEvalsAroundTheTarget) {
  const std::vector<EvalPoint> evals = {{0, 5.0, 0.0}, {100, 3.0, 10.0}, {200, 2.0, 20.0}};
  FlopsBreakdown flops;
  flops.train_per_token = 6.0;
  flops.optimizer_per_step = 100.0;
  const auto c = find_target_crossings(evals, {2.5, 1.0}, 1000.0, flops);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_TRUE(c[0].reached);
  EXPECT_DOUBLE_EQ(c[0].steps, 150.0);
  EXPECT_DOUBLE_EQ(c[0].tokens, 150000.0);
  EXPECT_DOUBLE_EQ(c[0].seconds, 15.0);
  EXPECT_DOUBLE_EQ(c[0].flops, 150000.0 * 6 + 150 * 100) << "the model's and the optimizer's";
  EXPECT_FALSE(c[1].reached);
}

TEST(Flops, MatchesTheReferenceFormulaForMha) {
  const ModelConfig m = find_preset("XS")->model;
  const FlopsBreakdown f = flops_per_token(m);
  // Attention term = 12 · n_layer · seq · hidden for MHA.
  EXPECT_DOUBLE_EQ(f.attention_term, 12.0 * 6 * 512 * 256);
  const double n_active = 6 * (4.0 * 256 * 256 + 2.0 * 256 * 1024) + 50257.0 * 256;
  EXPECT_DOUBLE_EQ(f.train_per_token, 6 * n_active + f.attention_term);
  EXPECT_DOUBLE_EQ(f.inference_per_token, f.train_per_token / 3);
}

TEST(Flops, MoeCountsOnlyTheActiveExperts) {
  ModelConfig m = find_preset("XS-moe-mla")->model;
  const FlopsBreakdown moe = flops_per_token(m);
  m.ffn = Ffn::kDense;
  const FlopsBreakdown dense = flops_per_token(m);
  // Top-2 experts of ffn_hidden/2 each match the dense FFN; the router adds 8 x 256 per layer.
  EXPECT_DOUBLE_EQ(moe.active_params - dense.active_params, 6.0 * 8 * 256);
  const FlopsBreakdown mha = flops_per_token(find_preset("XS")->model);
  EXPECT_DOUBLE_EQ(mha.attention_term, dense.attention_term);  // d_qk = d_v = head_dim in both
  EXPECT_LT(dense.active_params, mha.active_params);           // the latent compresses K and V
}

// Newton–Schulz, counted by hand: per iteration X Xᵀ and B X (2r²c each) and A² (2r³, only
// where the iteration's c coefficient is not 0), on the wide orientation whatever the storage.
TEST(Flops, NewtonSchulzCountsEveryGemmOfEveryIteration) {
  const double r = 128, c = 512;
  const double full = 4 * r * r * c + 2 * r * r * r;  // 37,748,736
  EXPECT_DOUBLE_EQ(orthogonalization_flops(512, 128, NsCoefficientSet::kJordan, 5), 5 * full);
  EXPECT_DOUBLE_EQ(orthogonalization_flops(128, 512, NsCoefficientSet::kJordan, 5), 5 * full);
  EXPECT_DOUBLE_EQ(orthogonalization_flops(128, 512, NsCoefficientSet::kPolarExpress, 3), 3 * full);
  EXPECT_DOUBLE_EQ(orthogonalization_flops(128, 512, NsCoefficientSet::kCubic, 5),
                   5 * 4 * r * r * c)
      << "cubic coefficients have no A² term";
  EXPECT_DOUBLE_EQ(orthogonalization_flops(128, 512, NsCoefficientSet::kNone, 5), 0.0);
  EXPECT_DOUBLE_EQ(orthogonalization_flops(128, 512, NsCoefficientSet::kSvd, 5),
                   6 * c * r * r + 20 * r * r * r + 2 * c * r * r);
}

// The tiny preset under Muon (jordan, 5 iterations), by hand: per layer Q, K, V, O (128 × 128:
// 6·128³ per iteration) and the MLP's two 128 × 512 matrices (4·128²·512 + 2·128³), two layers:
// 1,258,291,200 FLOPs a step, against 2,949,120 model FLOPs a token: +41.7% of the model's at
// 1,024 tokens a step, 20.8% at 2,048, 10.4% at 4,096. AdamW's step counts 0.
TEST(Flops, MuonsOrthogonalizationOfTheTinyPresetMatchesAHandCount) {
  auto cpu = make_cpu_backend(1);
  const ModelConfig m = find_preset("tiny")->model;
  Gpt model(m, *cpu);
  OptimizerConfig muon;
  muon.name = OptimizerKind::kMuon;
  const double per_step = optimizer_flops_per_step(model.params(), muon);
  const double square = 6.0 * 128 * 128 * 128, wide = 4.0 * 128 * 128 * 512 + 2.0 * 128 * 128 * 128;
  EXPECT_DOUBLE_EQ(per_step, 2 * 5 * (4 * square + 2 * wide));
  EXPECT_DOUBLE_EQ(per_step, 1258291200.0);
  FlopsBreakdown f = flops_per_token(m);
  EXPECT_DOUBLE_EQ(f.train_per_token, 2949120.0);
  f.optimizer_per_step = per_step;
  EXPECT_NEAR(f.training(1024, 1) / f.training(1024, 0) - 1, 0.417, 5e-4);
  EXPECT_NEAR(f.training(4096, 1) / f.training(4096, 0) - 1, 0.104, 5e-4);
  OptimizerConfig adamw;
  EXPECT_EQ(optimizer_flops_per_step(model.params(), adamw), 0.0);
}

// An MoE layer's Muon orthogonalizes every expert every step, not only the top_k a token uses.
TEST(Flops, MuonCountsEveryExpertNotOnlyTheActiveOnes) {
  auto cpu = make_cpu_backend(1);
  ModelConfig m = find_preset("tiny-moe-mla")->model;
  OptimizerConfig muon;
  muon.name = OptimizerKind::kMuon;
  const double all = optimizer_flops_per_step(Gpt(m, *cpu).params(), muon);
  const int fe = m.resolved_expert_hidden();
  const double expert = 2 * orthogonalization_flops(fe, m.hidden, NsCoefficientSet::kJordan, 5);
  m.n_experts -= 2;
  const double fewer = optimizer_flops_per_step(Gpt(m, *cpu).params(), muon);
  // Two experts fewer per layer: their matrices, and two rows fewer in each router.
  const double routers =
      m.n_layer *
      (orthogonalization_flops(m.n_experts + 2, m.hidden, NsCoefficientSet::kJordan, 5) -
       orthogonalization_flops(m.n_experts, m.hidden, NsCoefficientSet::kJordan, 5));
  EXPECT_DOUBLE_EQ(all - fewer, m.n_layer * 2 * expert + routers);
}

}  // namespace
