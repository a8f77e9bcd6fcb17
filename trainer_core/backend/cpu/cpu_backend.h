// The fp32 reference backend: OpenBLAS for GEMM, OpenMP for everything else.
#pragma once

#include "trainer_core/backend/backend.h"

namespace trainer_core {

// threads <= 0 keeps OpenMP's default (all cores).
std::unique_ptr<Backend> make_cpu_backend(int threads);

}  // namespace trainer_core
