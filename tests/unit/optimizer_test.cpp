// One and two optimizer steps of every variant against the double-precision hand reference.
#include "trainer_core/optim/optimizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "gradient_check.h"
#include "reference_math.h"
#include "trainer_core/backend/cpu/cpu_backend.h"

using namespace trainer_core;

namespace {

struct ParamSetup {
  std::vector<ParamInfo> params;
  std::vector<float> weights, grads;
};

// A 6x10 (or 10x6) block matrix, a norm gain and an embedding, in one flat buffer. mup_mult:
// the block matrix as muP sets it up at that width multiplier (both sides grow with width).
ParamSetup make_setup(int rows, int cols, double mup_mult = 1.0) {
  ParamSetup s;
  s.params.push_back({"blocks.0.attn.wq", ParamRole::kBlockMatrix, rows, cols, 0});
  ParamInfo& block = s.params.back();
  block.fan_in_mult = block.fan_out_mult = mup_mult;
  block.adamw_lr_scale = float(1.0 / mup_mult);
  block.adamw_wd_scale = float(mup_mult);
  s.params.push_back({"norm_f.gain", ParamRole::kNormGain, 1, 5, size_t(rows) * cols});
  s.params.push_back({"wte", ParamRole::kEmbedding, 3, 4, size_t(rows) * cols + 5});
  const size_t n = size_t(rows) * cols + 5 + 12;
  s.weights = test_util::random_vector(n, 1, 0.5);
  s.grads.resize(n);
  return s;
}

// Reference AdamW on a range, one step at count t.
void reference_adamw(std::vector<double>& w, std::vector<double>& m, std::vector<double>& v,
                     const std::vector<float>& g, size_t off, size_t n, const OptimizerConfig& c,
                     double lr, double wd, int t) {
  for (size_t i = 0; i < n; ++i) {
    m[off + i] = c.beta1 * m[off + i] + (1 - c.beta1) * g[off + i];
    v[off + i] = c.beta2 * v[off + i] + (1 - c.beta2) * g[off + i] * g[off + i];
    const double mh = m[off + i] / (1 - std::pow(c.beta1, t)),
                 vh = v[off + i] / (1 - std::pow(c.beta2, t));
    w[off + i] -= lr * (mh / (std::sqrt(vh) + c.eps) + wd * w[off + i]);
  }
}

void check_variant(const OptimizerConfig& c, int rows, int cols, double mup_mult = 1.0) {
  SCOPED_TRACE(std::string(name_of(c.name)) + " muP x" + std::to_string(mup_mult) + " " +
               name_of(c.muon.ns_coefficients) + " K=" + std::to_string(c.muon.ns_steps) + " rms=" +
               name_of(c.muon.rms_matching) + " nesterov=" + std::to_string(c.muon.nesterov) +
               " wd=" + std::to_string(c.muon.decoupled_weight_decay) + " " + std::to_string(rows) +
               "x" + std::to_string(cols));
  auto backend = make_cpu_backend(2);
  ParamSetup s = make_setup(rows, cols, mup_mult);
  Optimizer opt(c, s.params, s.weights.data(), s.grads.data(), *backend);
  const size_t n = s.weights.size(), mat = size_t(rows) * cols;
  std::vector<double> w(s.weights.begin(), s.weights.end()), m(n, 0), v(n, 0), buf(mat, 0);
  double ema = 0;
  const double lr = 0.02;
  for (int t = 1; t <= 2; ++t) {
    const auto fresh = test_util::random_vector(n, 100 + t);
    std::copy(fresh.begin(), fresh.end(), s.grads.begin());  // the optimizer holds this buffer
    opt.step(float(lr));
    // Reference.
    const bool muon = c.name == OptimizerKind::kMuon;
    if (muon) {
      reference::Matrix dir(mat);
      for (size_t i = 0; i < mat; ++i) {
        buf[i] = c.muon.momentum * buf[i] + s.grads[i];
        dir[i] = c.muon.nesterov ? s.grads[i] + c.muon.momentum * buf[i] : buf[i];
      }
      auto o = reference::newton_schulz(dir, rows, cols, name_of(c.muon.ns_coefficients),
                                        c.muon.ns_steps);
      double scale = 1;
      if (c.muon.rms_matching == RmsMatching::kMoonlight)
        scale = 0.2 * std::sqrt(double(std::max(rows, cols)));
      if (c.muon.rms_matching == RmsMatching::kOriginal)
        scale = std::sqrt(std::max(1.0, double(rows) / cols));
      if (c.muon.rms_matching == RmsMatching::kPerLayerDynamic) {
        double u2 = 0, o2 = 0;
        for (size_t i = 0; i < mat; ++i) {
          m[i] = c.beta1 * m[i] + (1 - c.beta1) * s.grads[i];
          v[i] = c.beta2 * v[i] + (1 - c.beta2) * s.grads[i] * s.grads[i];
          const double u = (m[i] / (1 - std::pow(c.beta1, t))) /
                           (std::sqrt(v[i] / (1 - std::pow(c.beta2, t))) + c.eps);
          u2 += u * u;
          o2 += o[i] * o[i];
        }
        ema = c.muon.dynamic_rms_ema * ema + (1 - c.muon.dynamic_rms_ema) * std::sqrt(u2 / mat);
        scale = ema / (1 - std::pow(c.muon.dynamic_rms_ema, t)) / std::sqrt(o2 / mat);
      }
      // muP: moonlight's and the dynamic scale grow as sqrt(width), so the update is divided by
      // sqrt(m) to keep its spectral norm at the base width's; the other rules' do not grow.
      const bool grows = c.muon.rms_matching == RmsMatching::kMoonlight ||
                         c.muon.rms_matching == RmsMatching::kPerLayerDynamic;
      if (grows) scale /= std::sqrt(mup_mult);
      const double wd = c.muon.decoupled_weight_decay ? c.weight_decay : 0.0;
      for (size_t i = 0; i < mat; ++i) w[i] = w[i] * (1 - lr * wd) - lr * scale * o[i];
    } else {
      // muP: lr / m and weight decay · m (the decay per step stays lr · wd).
      reference_adamw(w, m, v, s.grads, 0, mat, c, lr / mup_mult, c.weight_decay * mup_mult, t);
    }
    // A Muon run's AdamW parameters take the schedule scaled to their own peak lr.
    const double other_lr = muon && c.adamw_lr > 0 ? lr * c.adamw_lr / c.lr : lr;
    reference_adamw(w, m, v, s.grads, mat, 5, c, other_lr, 0.0, t);  // norm gain: no decay
    reference_adamw(w, m, v, s.grads, mat + 5, 12, c, other_lr, c.weight_decay, t);  // embedding
    double worst = 0;
    for (size_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(s.weights[i] - w[i]));
    EXPECT_LT(worst, 2e-5) << "after step " << t;
  }
}

TEST(Optimizer, AdamWMatchesReference) {
  OptimizerConfig c;
  c.name = OptimizerKind::kAdamW;
  check_variant(c, 6, 10);
}

TEST(Optimizer, EveryMuonVariantMatchesReference) {
  for (const std::string set : {"jordan", "cubic", "taylor", "polar_express", "svd", "none"})
    for (const std::string rms : {"moonlight", "original", "none", "per_layer_dynamic"})
      for (bool nesterov : {true, false})
        for (bool wd : {true, false}) {
          OptimizerConfig c;
          c.name = OptimizerKind::kMuon;
          c.muon.ns_coefficients = *parse_name<NsCoefficientSet>(set);
          c.muon.rms_matching = *parse_name<RmsMatching>(rms);
          c.muon.nesterov = nesterov;
          c.muon.decoupled_weight_decay = wd;
          check_variant(c, 6, 10);
          check_variant(c, 10, 6);
        }
}

// Muon orthogonalizes the matrices of one shape (up to a transpose) together, in one batch, and
// the shape that differs in a batch of its own; each matrix must still take the update it takes
// alone. The matrices' weights and gradients differ, so a mix-up of batch slots moves weights
// by O(lr), far beyond the tolerance.
TEST(Optimizer, MuonBatchesGiveEachMatrixTheUpdateItTakesAlone) {
  const std::vector<std::pair<int, int>> shapes = {{6, 10}, {10, 6}, {4, 10}, {6, 10}, {10, 6}};
  std::vector<ParamInfo> params;
  size_t n = 0;
  for (const auto& [rows, cols] : shapes) {
    params.push_back(
        {"blocks.0.w" + std::to_string(params.size()), ParamRole::kBlockMatrix, rows, cols, n});
    n += size_t(rows) * cols;
  }
  const std::vector<float> start = test_util::random_vector(n, 7, 0.5),
                           grads = test_util::random_vector(n, 8);
  OptimizerConfig c;
  c.name = OptimizerKind::kMuon;
  auto backend = make_cpu_backend(2);
  std::vector<float> together = start;
  Optimizer all(c, params, together.data(), grads.data(), *backend);
  for (int step = 0; step < 2; ++step) all.step(0.02f);
  for (const ParamInfo& p : params) {
    const auto first = start.begin() + long(p.offset), last = first + long(p.size());
    std::vector<float> weights(first, last);
    const std::vector<float> grad(grads.begin() + long(p.offset),
                                  grads.begin() + long(p.offset + p.size()));
    const std::vector<ParamInfo> alone = {{p.name, p.role, p.rows, p.cols, 0}};
    Optimizer one(c, alone, weights.data(), grad.data(), *backend);
    for (int step = 0; step < 2; ++step) one.step(0.02f);
    double err = 0;
    for (size_t i = 0; i < p.size(); ++i)
      err = std::max(err, double(std::abs(weights[i] - together[p.offset + i])));
    EXPECT_LT(err, 1e-6) << p.name << " (" << p.rows << "x" << p.cols << ")";
  }
}

TEST(Optimizer, MupScalesAdamWsLrAndWeightDecayOfBlockMatrices) {
  OptimizerConfig c;
  c.name = OptimizerKind::kAdamW;
  c.weight_decay = 0.1;
  check_variant(c, 6, 10, 4.0);
}

TEST(Optimizer, MupKeepsEveryMuonUpdatesSpectralNormAtTheBaseWidths) {
  for (const std::string rms : {"moonlight", "original", "none", "per_layer_dynamic"}) {
    OptimizerConfig c;
    c.name = OptimizerKind::kMuon;
    c.muon.rms_matching = *parse_name<RmsMatching>(rms);
    check_variant(c, 6, 10, 4.0);
  }
}

TEST(Optimizer, MuonMupFactorFollowsTheSpectralCondition) {
  ParamInfo hidden{"blocks.0.mlp.w_in", ParamRole::kBlockMatrix, 256, 64, 0};
  EXPECT_EQ(muon_mup_factor(hidden, RmsMatching::kMoonlight), 1.0) << "standard: exactly 1";
  hidden.fan_in_mult = hidden.fan_out_mult = 4.0;
  EXPECT_DOUBLE_EQ(muon_mup_factor(hidden, RmsMatching::kMoonlight), 0.5);
  EXPECT_DOUBLE_EQ(muon_mup_factor(hidden, RmsMatching::kOriginal), 1.0);
  EXPECT_DOUBLE_EQ(muon_mup_factor(hidden, RmsMatching::kNone), 1.0);
  // A router (8 experts from a 4x wider input): its update's spectral norm must shrink as
  // sqrt(fan-out / fan-in) = 1/2, and moonlight's scale sqrt(max(8, 64)) = 8 was sqrt(16) = 4.
  ParamInfo router{"blocks.0.moe.router", ParamRole::kBlockMatrix, 8, 64, 0};
  router.fan_in_mult = 4.0;
  EXPECT_DOUBLE_EQ(muon_mup_factor(router, RmsMatching::kMoonlight), 0.25);
  // original: sqrt(max(1, 8/64)) = 1 at both widths; none: 1.
  EXPECT_DOUBLE_EQ(muon_mup_factor(router, RmsMatching::kOriginal), 0.5);
  EXPECT_DOUBLE_EQ(muon_mup_factor(router, RmsMatching::kNone), 0.5);
}

TEST(Optimizer, MuonStepCountIsAField) {
  for (int k : {3, 7}) {
    OptimizerConfig c;
    c.name = OptimizerKind::kMuon;
    c.muon.ns_steps = k;
    check_variant(c, 6, 10);
  }
}

TEST(Optimizer, MuonRunsUpdateTheirAdamWParametersAtTheirOwnLearningRate) {
  OptimizerConfig c;
  c.name = OptimizerKind::kMuon;
  c.lr = 0.02;
  c.adamw_lr = 0.004;
  check_variant(c, 6, 10);
}

TEST(Optimizer, RoutingSendsOnlyBlockMatricesToMuon) {
  EXPECT_EQ(route_parameter(OptimizerKind::kMuon, ParamRole::kBlockMatrix), UpdateRule::kMuon);
  for (auto role :
       {ParamRole::kEmbedding, ParamRole::kHead, ParamRole::kNormGain, ParamRole::kNormBias})
    EXPECT_EQ(route_parameter(OptimizerKind::kMuon, role), UpdateRule::kAdamW);
  EXPECT_EQ(route_parameter(OptimizerKind::kAdamW, ParamRole::kBlockMatrix), UpdateRule::kAdamW);
}

TEST(Optimizer, MuonKeepsOneBufferPerMatrixAdamWTwo) {
  // The optimizer-state memory difference the paper's peak-memory column shows.
  auto backend = make_cpu_backend(1);
  ParamSetup s = make_setup(6, 10);
  OptimizerConfig adamw;
  const size_t base = backend->bytes_in_use();
  size_t adamw_bytes, muon_bytes;
  {
    Optimizer o(adamw, s.params, s.weights.data(), s.grads.data(), *backend);
    adamw_bytes = backend->bytes_in_use() - base;
  }
  OptimizerConfig muon;
  muon.name = OptimizerKind::kMuon;
  {
    Optimizer o(muon, s.params, s.weights.data(), s.grads.data(), *backend);
    muon_bytes = backend->bytes_in_use() - base;
  }
  // AdamW: 2 x 77 floats. Muon: 2 x 17 (AdamW part) + 60 momentum + 2 x 60 scratch.
  EXPECT_EQ(adamw_bytes, 2 * 77 * sizeof(float));
  EXPECT_EQ(muon_bytes, (2 * 17 + 60 + 2 * 60) * sizeof(float));
}

}  // namespace
