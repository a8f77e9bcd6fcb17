#include "trainer_core/optim/newton_schulz.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

namespace trainer_core {

namespace {
constexpr NsCoefficients kPolarExpress[5] = {
    {8.156554524902461, -22.48329292557795, 15.878769915207462},
    {4.042929935166739, -2.808917465908714, 0.5000178451051316},
    {3.8916678022926607, -2.772484153217685, 0.5060648178503393},
    {3.285753657755655, -2.3681294933425376, 0.46449024233003106},
    {2.3465413258596377, -1.7097828382687081, 0.42323551169305323},
};
}  // namespace

NsCoefficients ns_coefficients(NsCoefficientSet set, int k) {
  switch (set) {
    case NsCoefficientSet::kJordan:
      return {3.4445, -4.7750, 2.0315};
    case NsCoefficientSet::kCubic:
      return {1.5, -0.5, 0.0};
    case NsCoefficientSet::kTaylor:
      return {15.0 / 8, -10.0 / 8, 3.0 / 8};
    case NsCoefficientSet::kPolarExpress:
      return kPolarExpress[std::min(k, 4)];
    case NsCoefficientSet::kSvd:
    case NsCoefficientSet::kNone:
      break;
  }
  throw std::invalid_argument(std::string("no Newton-Schulz coefficients for set '") +
                              name_of(set) + "'");
}

double orthogonalization_flops(int rows, int cols, NsCoefficientSet set, int steps) {
  const double r = std::min(rows, cols), c = std::max(rows, cols);
  if (set == NsCoefficientSet::kNone) return 0;
  if (set == NsCoefficientSet::kSvd) return 6 * c * r * r + 20 * r * r * r + 2 * c * r * r;
  double total = 0;
  for (int k = 0; k < steps; ++k)
    total += 4 * r * r * c + (ns_coefficients(set, k).c != 0.0 ? 2 * r * r * r : 0.0);
  return total;
}

void NewtonSchulz::reserve(size_t matrix, size_t gram) {
  if (x_.size() < matrix) {
    x_ = Tensor(backend_, matrix);
    x_next_ = Tensor(backend_, matrix);
  }
  if (gram_.size() < gram) {
    gram_ = Tensor(backend_, gram);
    poly_ = Tensor(backend_, gram);
  }
}

void NewtonSchulz::run(const float* m, int rows, int cols, NsCoefficientSet set, int steps,
                       float* out) {
  const size_t count = size_t(rows) * cols;
  if (set == NsCoefficientSet::kNone) {
    // The ablation without orthogonalization keeps the update's size: the momentum, rescaled to
    // the Frobenius norm of a semi-orthogonal matrix of this shape (sqrt(min(rows, cols))), so the
    // RMS matching that follows gives it the step size an orthogonalized update would have.
    backend_.copy(m, out, count);
    backend_.scale_to_inverse_norm(out, count, std::sqrt(double(std::min(rows, cols))), 1.0, 1e-7);
    return;
  }
  if (set == NsCoefficientSet::kSvd) return backend_.polar_factor_exact(m, rows, cols, out);

  // Work on the wide orientation (r <= c) so the Gram matrix X Xᵀ is the small one.
  const bool transposed = rows > cols;
  const int r = transposed ? cols : rows, c = transposed ? rows : cols;
  reserve(count, size_t(r) * r);
  float* x = x_.data();
  float* x_next = x_next_.data();
  if (transposed)
    backend_.transpose(m, rows, cols, x);
  else
    backend_.copy(m, x, count);
  // Onto the unit Frobenius ball (Polar Express: slightly inside it), without leaving the device.
  if (set == NsCoefficientSet::kPolarExpress)
    backend_.scale_to_inverse_norm(x, count, 1.0, 1.02, 1e-6);
  else
    backend_.scale_to_inverse_norm(x, count, 1.0, 1.0, 1e-7);

  constexpr Transpose N = Transpose::kNo, T = Transpose::kYes;
  for (int k = 0; k < steps; ++k) {
    const NsCoefficients co = ns_coefficients(set, k);
    float* gram = gram_.data();
    float* poly = poly_.data();
    backend_.gemm(N, T, r, r, c, 1.0f, x, c, x, c, 0.0f, gram, r);  // A = X Xᵀ
    if (co.c != 0.0)
      backend_.gemm(N, N, r, r, r, float(co.c), gram, r, gram, r, 0.0f, poly, r);  // c A²
    else
      backend_.fill(poly, size_t(r) * r, 0.0f);
    backend_.axpy(gram, poly, size_t(r) * r, float(co.b));  // B = b A + c A²
    backend_.copy(x, x_next, count);
    backend_.gemm(N, N, r, c, r, 1.0f, poly, r, x, c, float(co.a), x_next, c);  // a X + B X
    std::swap(x, x_next);
  }
  if (transposed)
    backend_.transpose(x, r, c, out);
  else
    backend_.copy(x, out, count);
}

}  // namespace trainer_core
