// Orthogonalization for Muon: NS_K(M) ≈ U Vᵀ for M = U Σ Vᵀ (docs/science.md, Muon step 2).
#pragma once

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

// Reusable buffers so the optimizer allocates once, not every step.
class NewtonSchulz {
 public:
  explicit NewtonSchulz(Backend& backend) : backend_(backend) {}
  // out = orthogonalized m (rows x cols). kSvd is the exact polar factor; kNone is m rescaled
  // to the Frobenius norm of a semi-orthogonal matrix, sqrt(min(rows, cols)) (same update size).
  void run(const float* m, int rows, int cols, NsCoefficientSet set, int steps, float* out);

 private:
  void reserve(size_t matrix, size_t gram);
  Backend& backend_;
  Tensor x_, x_next_, gram_, poly_;
};

}  // namespace trainer_core
