// Finite-difference helpers shared by the gradient tests.
//
// Scheme: outputs are reduced to a scalar L = Σ r_i · out_i with a fixed random r; the analytic
// gradient comes from the op's backward with dout = r; the numeric one from central differences
// (h = 1e-3) with L summed in double. The ops run in fp32, so the comparison is on a whole
// gradient vector: ‖analytic − numeric‖ / ‖numeric‖ must be below kRelTol = 1e-2, which a wrong
// formula (a missed term, a sign, a transposition) exceeds by orders of magnitude.
#pragma once

#include <cmath>
#include <functional>
#include <vector>

#include "trainer_core/util/rng.h"

namespace test_util {

constexpr double kRelTol = 1e-2;
constexpr float kStep = 1e-3f;

inline std::vector<float> random_vector(size_t n, uint64_t seed, double scale = 1.0) {
  trainer_core::NormalRng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = float(scale * rng.next());
  return v;
}

inline double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += double(a[i]) * b[i];
  return s;
}

// Numeric gradient of loss() with respect to x (modified in place and restored).
inline std::vector<double> numeric_gradient(std::vector<float>& x,
                                            const std::function<double()>& loss) {
  std::vector<double> g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const float saved = x[i];
    x[i] = saved + kStep;
    const double plus = loss();
    x[i] = saved - kStep;
    const double minus = loss();
    x[i] = saved;
    g[i] = (plus - minus) / (2.0 * kStep);
  }
  return g;
}

// ||value - reference|| / ||reference|| (the reference's norm at least 1e-12).
template <typename Value, typename Reference>
double relative_error(const std::vector<Value>& value, const std::vector<Reference>& reference) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < reference.size(); ++i) {
    const double d = double(value[i]) - double(reference[i]);
    diff += d * d;
    norm += double(reference[i]) * double(reference[i]);
  }
  return std::sqrt(diff) / std::max(std::sqrt(norm), 1e-12);
}

}  // namespace test_util
