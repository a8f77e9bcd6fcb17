// The coordinate check (trainer_core/train/coord_check.h): under muP the size of every layer's
// activations and of its update's effect stays flat in width, for AdamW and for Muon; in the
// standard parametrization it grows, which is what the check exists to show.
//
// Thresholds: with widths 64-256, 3 steps and 3 seeds, a single projection's slope under muP
// moves by up to about ±0.25 from one seed set to the next (finite width). The mean |slope| over
// the block projections, per figure (output, update: absolute, so that they cannot cancel), is
// 0.02-0.04 for seed set 1 and up to 0.13 (AdamW's update) for seed set 11; the logits' stay
// within ±0.06. The standard parametrization's mean slopes are 0.65-1.2, the logits' 0.8-0.9.
// The test (seed set 1) asserts, under muP, mean |slope| < 0.1 per figure, |slope| < 0.1 for the
// logits and < 0.3 for every projection; in the standard parametrization, mean slope > 0.4 per
// figure and > 0.4 for the logits. Without Muon's muP factor (optimizer.h) the Muon case fails.
#include "trainer_core/train/coord_check.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

using namespace trainer_core;

namespace {

// Bytes of a made-up language: words drawn from a small vocabulary by a fixed generator, so
// that the model has something to learn in a few steps.
TokenDataset made_up_text() {
  const char* words[] = {"the ", "cat ", "sat ", "on ", "a ", "mat ", "and ", "dog ", "ran ", ". "};
  std::vector<uint16_t> tokens;
  uint64_t state = 12345;
  while (tokens.size() < 40000) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    for (const char* c = words[(state >> 33) % 10]; *c; ++c) tokens.push_back(uint8_t(*c));
  }
  return TokenDataset::from_tokens(std::move(tokens), 0.1, 256);
}

TrainConfig tiny(Parametrization parametrization, OptimizerKind optimizer) {
  TrainConfig c;
  c.model.n_layer = 2;
  c.model.hidden = 64;
  c.model.n_head = 2;  // head size 32, kept as the width grows
  c.model.ffn_hidden = 256;
  c.model.vocab_size = 256;
  c.model.seq_len = 64;
  c.model.parametrization = parametrization;
  c.optimizer.name = optimizer;
  c.optimizer.lr = optimizer == OptimizerKind::kMuon ? 1.2e-2 : 3e-3;
  c.training.micro_batch = 8;
  c.training.batch_tokens = 8 * 64;
  c.seed = 1;
  c.threads = 2;
  return c;
}

struct Slopes {
  double block_mean_abs[2] = {0, 0};  // per figure (CoordQuantity): mean |slope| over projections
  double block_mean[2] = {0, 0};      // per figure: mean slope
  double block_worst = 0, logits_worst = 0, logits_least = 1e9;
};
Slopes slopes(const CoordCheckResult& r) {
  Slopes s;
  int blocks[2] = {0, 0};
  for (const CoordSeries& series : r.series) {
    if (series.projection == "logits") {
      s.logits_worst = std::max(s.logits_worst, std::fabs(series.slope));
      s.logits_least = std::min(s.logits_least, series.slope);
      continue;
    }
    const int q = int(series.quantity);
    s.block_mean_abs[q] += std::fabs(series.slope);
    s.block_mean[q] += series.slope;
    s.block_worst = std::max(s.block_worst, std::fabs(series.slope));
    ++blocks[q];
  }
  for (int q : {0, 1}) {
    s.block_mean_abs[q] /= blocks[q];
    s.block_mean[q] /= blocks[q];
  }
  return s;
}

}  // namespace

TEST(CoordCheck, MupIsFlatInWidthAndStandardIsNot) {
  const TokenDataset data = made_up_text();
  const CoordCheckOptions options{{64, 128, 256}, 3, 3};
  for (OptimizerKind optimizer : {OptimizerKind::kAdamW, OptimizerKind::kMuon}) {
    SCOPED_TRACE(name_of(optimizer));
    const CoordCheckResult mup =
        run_coord_check(tiny(Parametrization::kMup, optimizer), data, options);
    ASSERT_EQ(mup.series.size(), 2u * (2 * 6 + 1)) << "6 projections a block, and the logits";
    const Slopes flat = slopes(mup);
    for (int q : {0, 1}) {
      EXPECT_LT(flat.block_mean_abs[q], 0.1) << coord_quantity_name(CoordQuantity(q));
    }
    EXPECT_LT(flat.logits_worst, 0.1);
    EXPECT_LT(flat.block_worst, 0.3);

    const Slopes grows =
        slopes(run_coord_check(tiny(Parametrization::kStandard, optimizer), data, options));
    for (int q : {0, 1}) {
      EXPECT_GT(grows.block_mean[q], 0.4) << coord_quantity_name(CoordQuantity(q));
    }
    EXPECT_GT(grows.logits_least, 0.4);
  }
}

TEST(CoordCheck, ScalesEveryWidthSizedDimensionAndKeepsTheHeadSize) {
  ModelConfig m;
  m.hidden = 64;
  m.n_head = 2;
  m.ffn_hidden = 256;
  m.kv_latent_dim = 48;
  m.parametrization = Parametrization::kMup;
  const ModelConfig wide = model_at_width(m, 256, 64);
  EXPECT_EQ(wide.hidden, 256);
  EXPECT_EQ(wide.n_head, 8);
  EXPECT_EQ(wide.ffn_hidden, 1024);
  EXPECT_EQ(wide.kv_latent_dim, 192);
  EXPECT_EQ(wide.q_latent_dim, 0) << "0 (derived) stays derived";
  EXPECT_EQ(wide.mup_base_hidden, 64);
  EXPECT_THROW(model_at_width(m, 100, 64), std::invalid_argument) << "not a multiple of 32";
}

TEST(CoordCheck, RefusesWidthsThatDoNotIncrease) {
  const TokenDataset data = made_up_text();
  TrainConfig c = tiny(Parametrization::kMup, OptimizerKind::kAdamW);
  EXPECT_THROW(run_coord_check(c, data, {{64}, 1, 1}), std::invalid_argument);
  EXPECT_THROW(run_coord_check(c, data, {{128, 64}, 1, 1}), std::invalid_argument);
}

TEST(CoordCheck, LogLogSlope) {
  EXPECT_NEAR(log_log_slope({1, 2, 4, 8}, {3, 6, 12, 24}), 1.0, 1e-12);
  EXPECT_NEAR(log_log_slope({1, 2, 4}, {5, 5, 5}), 0.0, 1e-12);
  EXPECT_NEAR(log_log_slope({1, 4, 16}, {1, 0.5, 0.25}), -0.5, 1e-12);
}
