// The CUDA backend (built where nvcc is present): the Backend contract on one GPU, with bf16
// tensor-core GEMMs and fp32 storage. See cuda_backend.cpp for the precision and attention notes.
#pragma once

#include "trainer_core/backend/backend.h"

namespace trainer_core {

// Throws std::runtime_error when `device` is not a visible CUDA device.
std::unique_ptr<Backend> make_cuda_backend(int device);

}  // namespace trainer_core
