// Linear layers over the backend's GEMM, shared by training (Gpt) and generation (Generator).
// A weight is stored (out, in), as everywhere in the model: y = x Wᵀ.
#pragma once

#include <cstddef>

#include "trainer_core/backend/backend.h"

namespace trainer_core {

// y = x Wᵀ for x (n, in) and W (out, in).
inline void linear(Backend& b, const float* x, const float* w, size_t n, int in, int out,
                   float* y) {
  if (n) b.gemm(Transpose::kNo, Transpose::kYes, int(n), out, in, 1.0f, x, in, w, in, 0.0f, y, out);
}
// dW += dyᵀ x ; dx = beta dx + dy W.
inline void linear_backward(Backend& b, const float* dy, const float* x, const float* w, size_t n,
                            int in, int out, float* dw, float* dx, float dx_beta) {
  if (!n) return;
  b.gemm(Transpose::kYes, Transpose::kNo, out, in, int(n), 1.0f, dy, out, x, in, 1.0f, dw, in);
  b.gemm(Transpose::kNo, Transpose::kNo, int(n), in, out, 1.0f, dy, out, w, in, dx_beta, dx, in);
}

}  // namespace trainer_core
