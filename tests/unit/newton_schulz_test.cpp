#include "trainer_core/optim/newton_schulz.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>
#include <vector>

#include "gradient_check.h"
#include "reference_math.h"
#include "trainer_core/backend/cpu/cpu_backend.h"

using namespace trainer_core;

namespace {

reference::Matrix to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// Singular values of a (rows <= cols) matrix: square roots of the eigenvalues of X Xᵀ, by Jacobi.
std::vector<double> singular_values(const std::vector<float>& x, int rows, int cols) {
  auto xd = to_double(x);
  auto a = reference::matmul(xd, reference::transpose(xd, rows, cols), rows, cols, rows);
  const int n = rows;
  for (int sweep = 0; sweep < 100; ++sweep)
    for (int p = 0; p < n; ++p)
      for (int q = p + 1; q < n; ++q) {
        const double apq = a[p * n + q];
        if (std::abs(apq) < 1e-15) continue;
        const double theta = 0.5 * std::atan2(2 * apq, a[q * n + q] - a[p * n + p]);
        const double c = std::cos(theta), s = std::sin(theta);
        for (int k = 0; k < n; ++k) {
          const double akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (int k = 0; k < n; ++k) {
          const double apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
      }
  std::vector<double> sv;
  for (int i = 0; i < n; ++i) sv.push_back(std::sqrt(std::max(0.0, a[i * n + i])));
  return sv;
}

TEST(NewtonSchulz, JordanFiveStepsBringsSingularValuesIntoTheBand) {
  // Keller Jordan's quintic does not converge to 1; it maps singular values into roughly
  // [0.7, 1.2] in five steps. Checked on random Gaussian matrices of several shapes.
  auto backend = make_cpu_backend(2);
  NewtonSchulz ns(*backend);
  for (auto [rows, cols] : {std::pair{32, 128}, std::pair{64, 64 * 3}, std::pair{96, 48}}) {
    auto m = test_util::random_vector(size_t(rows) * cols, rows + cols);
    std::vector<float> out(m.size());
    ns.run(m.data(), rows, cols, NsCoefficientSet::kJordan, 5, out.data());
    const bool tall = rows > cols;
    auto wide = tall ? std::vector<float>(out.size()) : out;
    if (tall) backend->transpose(out.data(), rows, cols, wide.data());
    for (double s : singular_values(wide, std::min(rows, cols), std::max(rows, cols))) {
      EXPECT_GT(s, 0.65) << rows << "x" << cols;
      EXPECT_LT(s, 1.25) << rows << "x" << cols;
    }
  }
}

TEST(NewtonSchulz, SvdModeIsTheExactPolarFactor) {
  auto backend = make_cpu_backend(2);
  NewtonSchulz ns(*backend);
  for (auto [rows, cols] : {std::pair{12, 20}, std::pair{20, 12}}) {
    auto m = test_util::random_vector(size_t(rows) * cols, 5);
    std::vector<float> out(m.size());
    ns.run(m.data(), rows, cols, NsCoefficientSet::kSvd, 5, out.data());
    const auto expected = reference::newton_schulz(to_double(m), rows, cols, "svd", 0);
    for (size_t i = 0; i < out.size(); ++i) EXPECT_NEAR(out[i], expected[i], 1e-4) << i;
  }
}

TEST(NewtonSchulz, EverySetMatchesTheDoubleReference) {
  auto backend = make_cpu_backend(2);
  NewtonSchulz ns(*backend);
  for (const std::string set : {"jordan", "cubic", "taylor", "polar_express", "none"})
    for (int steps : {3, 5, 7})
      for (auto [rows, cols] : {std::pair{8, 24}, std::pair{24, 8}}) {
        auto m = test_util::random_vector(size_t(rows) * cols, steps * 31 + rows);
        std::vector<float> out(m.size());
        ns.run(m.data(), rows, cols, *parse_name<NsCoefficientSet>(set), steps, out.data());
        const auto expected = reference::newton_schulz(to_double(m), rows, cols, set, steps);
        double err = 0;
        for (size_t i = 0; i < out.size(); ++i) err = std::max(err, std::abs(out[i] - expected[i]));
        EXPECT_LT(err, 2e-4) << set << " K=" << steps << " " << rows << "x" << cols;
      }
}

// A batch is each of its matrices orthogonalized on its own: stacking them (wide and tall ones
// of one shape together, the GEMMs of an iteration in one batched call split across threads)
// must not mix one matrix's rows into another's result. The matrices differ in scale and
// content, so a mix-up moves results by O(1), far beyond the tolerance.
TEST(NewtonSchulz, ABatchGivesEachMatrixItsOwnResult) {
  auto backend = make_cpu_backend(2);
  NewtonSchulz batched(*backend), single(*backend);
  const std::vector<std::pair<int, int>> shapes = {
      {16, 40}, {40, 16}, {16, 40}, {40, 16}, {16, 40}};
  std::vector<std::vector<float>> inputs, outputs;
  for (size_t i = 0; i < shapes.size(); ++i) {
    inputs.push_back(test_util::random_vector(size_t(shapes[i].first) * shapes[i].second,
                                              int(i) + 3, 0.5 + double(i)));
    outputs.emplace_back(inputs.back().size());
  }
  std::vector<NsMatrix> batch;
  for (size_t i = 0; i < shapes.size(); ++i)
    batch.push_back({inputs[i].data(), shapes[i].first, shapes[i].second, outputs[i].data()});
  for (const std::string set : {"jordan", "cubic", "polar_express", "none", "svd"}) {
    const NsCoefficientSet coefficients = *parse_name<NsCoefficientSet>(set);
    batched.run_batch(batch, coefficients, 5);
    for (size_t i = 0; i < shapes.size(); ++i) {
      const auto [rows, cols] = shapes[i];
      std::vector<float> alone(inputs[i].size());
      single.run(inputs[i].data(), rows, cols, coefficients, 5, alone.data());
      double err = 0;
      for (size_t j = 0; j < alone.size(); ++j)
        err = std::max(err, double(std::abs(outputs[i][j] - alone[j])));
      EXPECT_LT(err, 1e-6) << set << ", matrix " << i << " (" << rows << "x" << cols << ")";
    }
  }
}

TEST(NewtonSchulz, ABatchOfDifferentShapesIsRefused) {
  auto backend = make_cpu_backend(1);
  NewtonSchulz ns(*backend);
  std::vector<float> a(16 * 40), b(16 * 48), out_a(a.size()), out_b(b.size());
  const std::vector<NsMatrix> batch = {{a.data(), 16, 40, out_a.data()},
                                       {b.data(), 16, 48, out_b.data()}};
  EXPECT_THROW(ns.run_batch(batch, NsCoefficientSet::kJordan, 5), std::invalid_argument);
}

// The "no orthogonalization" ablation must change the update's direction only: its output has the
// size of an orthogonalized one (Frobenius norm sqrt(min(rows, cols))), whatever the momentum's
// scale.
TEST(NewtonSchulz, NoOrthogonalizationKeepsTheSizeOfAnOrthogonalUpdate) {
  auto backend = make_cpu_backend(2);
  NewtonSchulz ns(*backend);
  for (auto [rows, cols] : {std::pair{16, 48}, std::pair{48, 16}})
    for (float magnitude : {1e-3f, 1.0f, 50.0f}) {
      auto m = test_util::random_vector(size_t(rows) * cols, 11);
      for (float& v : m) v *= magnitude;
      std::vector<float> none(m.size()), svd(m.size());
      ns.run(m.data(), rows, cols, NsCoefficientSet::kNone, 5, none.data());
      ns.run(m.data(), rows, cols, NsCoefficientSet::kSvd, 5, svd.data());
      const double norm_none = std::sqrt(backend->sum_squares(none.data(), none.size()));
      const double norm_svd = std::sqrt(backend->sum_squares(svd.data(), svd.size()));
      EXPECT_NEAR(norm_none, std::sqrt(double(std::min(rows, cols))), 1e-3)
          << rows << "x" << cols << " x" << magnitude;
      EXPECT_NEAR(norm_none, norm_svd, 1e-3) << rows << "x" << cols;
      // Same direction as the momentum.
      double dot = 0, mm = 0;
      for (size_t i = 0; i < m.size(); ++i)
        dot += double(m[i]) * none[i], mm += double(m[i]) * m[i];
      EXPECT_NEAR(dot / (std::sqrt(mm) * norm_none), 1.0, 1e-5);
    }
}

}  // namespace
