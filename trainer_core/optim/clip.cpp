#include "trainer_core/optim/clip.h"

#include <cmath>

namespace trainer_core {

double clip_by_global_norm(Backend& backend, float* grads, size_t n, double max_norm) {
  const double norm = std::sqrt(backend.sum_squares(grads, n));
  if (max_norm > 0 && std::isfinite(norm) && norm > max_norm)
    backend.scale(grads, n, float(max_norm / norm));
  return norm;
}

}  // namespace trainer_core
