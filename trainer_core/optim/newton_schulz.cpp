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

void NewtonSchulz::reserve(size_t stack, size_t grams) {
  if (x_.size() < stack) {
    x_ = Tensor(backend_, stack);
    x_next_ = Tensor(backend_, stack);
  }
  if (gram_.size() < grams) {
    gram_ = Tensor(backend_, grams);
    poly_ = Tensor(backend_, grams);
  }
}

void NewtonSchulz::run(const float* m, int rows, int cols, NsCoefficientSet set, int steps,
                       float* out) {
  const NsMatrix one{m, rows, cols, out};
  run_batch({&one, 1}, set, steps);
}

void NewtonSchulz::run_batch(std::span<const NsMatrix> batch, NsCoefficientSet set, int steps) {
  if (batch.empty()) return;
  if (set == NsCoefficientSet::kNone) {
    // The ablation without orthogonalization keeps the update's size: the momentum, rescaled to
    // the Frobenius norm of a semi-orthogonal matrix of this shape (sqrt(min(rows, cols))), so the
    // RMS matching that follows gives it the step size an orthogonalized update would have.
    for (const NsMatrix& one : batch) {
      const size_t count = size_t(one.rows) * one.cols;
      backend_.copy(one.m, one.out, count);
      backend_.scale_to_inverse_norm(one.out, count, 1,
                                     std::sqrt(double(std::min(one.rows, one.cols))), 1.0, 1e-7);
    }
    return;
  }
  if (set == NsCoefficientSet::kSvd) {
    for (const NsMatrix& one : batch)
      backend_.polar_factor_exact(one.m, one.rows, one.cols, one.out);
    return;
  }

  // Work on the wide orientation (r <= c) so the Gram matrix X Xᵀ is the small one.
  const int r = std::min(batch[0].rows, batch[0].cols), c = std::max(batch[0].rows, batch[0].cols);
  const size_t matrix = size_t(r) * c, gram_size = size_t(r) * r;
  const int count = int(batch.size());
  reserve(matrix * count, gram_size * count);
  float* x = x_.data();
  float* x_next = x_next_.data();
  for (int i = 0; i < count; ++i) {
    const NsMatrix& in = batch[i];
    if (std::min(in.rows, in.cols) != r || std::max(in.rows, in.cols) != c)
      throw std::invalid_argument("NewtonSchulz::run_batch: matrices of different shapes");
    float* xi = x + matrix * i;
    if (in.rows > in.cols)
      backend_.transpose(in.m, in.rows, in.cols, xi);
    else
      backend_.copy(in.m, xi, matrix);
  }
  // Each onto the unit Frobenius ball (Polar Express: slightly inside it), on the device.
  if (set == NsCoefficientSet::kPolarExpress)
    backend_.scale_to_inverse_norm(x, matrix, count, 1.0, 1.02, 1e-6);
  else
    backend_.scale_to_inverse_norm(x, matrix, count, 1.0, 1.0, 1e-7);

  constexpr Transpose N = Transpose::kNo, T = Transpose::kYes;
  const long long stride_x = (long long)matrix, stride_gram = (long long)gram_size;
  const size_t grams = gram_size * count;
  for (int k = 0; k < steps; ++k) {
    const NsCoefficients co = ns_coefficients(set, k);
    float* gram = gram_.data();
    float* poly = poly_.data();
    backend_.gemm_strided_batched(N, T, r, r, c, 1.0f, x, c, stride_x, x, c, stride_x, 0.0f, gram,
                                  r, stride_gram, count);  // A = X Xᵀ
    // B = b A + c A²: one GEMM onto a copy of A (beta = b), or b A alone where c is 0.
    backend_.copy(gram, poly, grams);
    if (co.c != 0.0)
      backend_.gemm_strided_batched(N, N, r, r, r, float(co.c), gram, r, stride_gram, gram, r,
                                    stride_gram, float(co.b), poly, r, stride_gram, count);
    else
      backend_.scale(poly, grams, float(co.b));
    backend_.copy(x, x_next, matrix * count);
    backend_.gemm_strided_batched(N, N, r, c, r, 1.0f, poly, r, stride_gram, x, c, stride_x,
                                  float(co.a), x_next, c, stride_x, count);  // a X + B X
    std::swap(x, x_next);
  }
  for (int i = 0; i < count; ++i) {
    const NsMatrix& o = batch[i];
    if (o.rows > o.cols)
      backend_.transpose(x + matrix * i, r, c, o.out);
    else
      backend_.copy(x + matrix * i, o.out, matrix);
  }
}

}  // namespace trainer_core
