// Orthogonalization for Muon: NS_K(M) ≈ U Vᵀ for M = U Σ Vᵀ (docs/science.md, Muon step 2).
#pragma once

#include <string>
#include <vector>

#include "trainer_core/backend/backend.h"

namespace trainer_core {

struct NsCoefficients {
  double a, b, c;
};

// The coefficients of iteration k (0-based) for a named set; polar_express has a per-step
// schedule and repeats its last entry beyond five steps. Throws for an unknown name.
NsCoefficients ns_coefficients(const std::string& set, int k);
bool is_known_ns_set(const std::string& set);  // includes "svd" and "none"

// Reusable buffers so the optimizer allocates once, not every step.
class NewtonSchulz {
 public:
  explicit NewtonSchulz(Backend& backend) : backend_(backend) {}
  // out = orthogonalized m (rows x cols). "svd" is the exact polar factor; "none" is m rescaled
  // to the Frobenius norm of a semi-orthogonal matrix, sqrt(min(rows, cols)) (same update size).
  void run(const float* m, int rows, int cols, const std::string& set, int steps, float* out);

 private:
  void reserve(size_t matrix, size_t gram);
  Backend& backend_;
  Tensor x_, x_next_, gram_, poly_;
};

}  // namespace trainer_core
