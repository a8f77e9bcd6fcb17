// Orthogonalization for Muon: NS_K(M) ≈ U Vᵀ for M = U Σ Vᵀ (docs/science.md, Muon step 2).
#pragma once

#include <span>
#include <string>
#include <vector>

#include "trainer_core/backend/backend.h"
#include "trainer_core/config/config_enums.h"

namespace trainer_core {

struct NsCoefficients {
  double a, b, c;
};

// The coefficients of iteration k (0-based) of a polynomial set; polar_express has a per-step
// schedule and repeats its last entry beyond five steps. Throws for svd and none (no polynomial).
NsCoefficients ns_coefficients(NsCoefficientSet set, int k);

// Matrix-multiply FLOPs (two per multiply-add) of one NewtonSchulz::run on a rows × cols matrix,
// r = min(rows, cols), c = max(rows, cols), the count run() performs: per iteration X Xᵀ (2r²c),
// A² where the iteration's coefficient c is not 0 (2r³) and B X (2r²c). svd: an estimate, since
// LAPACK's iterations vary: Golub & Van Loan's R-SVD with thin U and V (6cr² + 20r³) and U Vᵀ
// (2cr²). none: 0 (a rescaling). Elementwise work (norms, axpy, transposes) is left out, as the
// model's 6N leaves out its own.
double orthogonalization_flops(int rows, int cols, NsCoefficientSet set, int steps);

// One matrix of a batch: m (rows x cols) in, its orthogonalized version out.
struct NsMatrix {
  const float* m;
  int rows, cols;
  float* out;
};

// Reusable buffers so the optimizer allocates once, not every step.
class NewtonSchulz {
 public:
  explicit NewtonSchulz(Backend& backend) : backend_(backend) {}
  // out = orthogonalized m (rows x cols). kSvd is the exact polar factor; kNone is m rescaled
  // to the Frobenius norm of a semi-orthogonal matrix, sqrt(min(rows, cols)) (same update size).
  void run(const float* m, int rows, int cols, NsCoefficientSet set, int steps, float* out);
  // run() on every matrix of the batch, each on its own, in one pass: the matrices are stacked
  // in their wide orientation so that each iteration is one batched GEMM per product over the
  // stack, not one GEMM per matrix. Every matrix must have the same shape up to a transpose
  // (the same min(rows, cols) and max(rows, cols)).
  void run_batch(std::span<const NsMatrix> batch, NsCoefficientSet set, int steps);

 private:
  void reserve(size_t stack, size_t grams);
  Backend& backend_;
  Tensor x_, x_next_, gram_, poly_;  // stacks: one wide matrix (or its Gram matrix) after another
};

}  // namespace trainer_core
