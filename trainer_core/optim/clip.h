// Global-norm gradient clipping (docs/science.md: clip at 1.0).
#pragma once

#include <cstddef>

#include "trainer_core/backend/backend.h"

namespace trainer_core {

// Scales grads so their global L2 norm is at most max_norm (max_norm <= 0: no clipping).
// Returns the norm before clipping; a non-finite norm leaves grads untouched.
double clip_by_global_norm(Backend& backend, float* grads, size_t n, double max_norm);

}  // namespace trainer_core
