// The CUDA backend (built where nvcc is present): the Backend contract on one GPU, with bf16
// tensor-core GEMMs and fp32 storage. See cuda_backend.cpp for the precision and attention notes.
#pragma once

#include "trainer_core/backend/backend.h"

namespace trainer_core {

// How the backend computes causal attention. kMaterialized: one sequence's heads × seq × seq
// scores at a time in scratch, cuBLAS GEMMs around fused softmax kernels. kFused: flash attention
// (flash_attention.h), where the head dim is 64 or 128 and the device grants the shared memory;
// materialized otherwise. The default stays materialized until the fused kernels have passed the
// GPU tests on a real GPU (scripts/gpu-check.sh tests and benchmarks both).
enum class CudaAttention { kMaterialized, kFused };

// Throws std::runtime_error when `device` is not a visible CUDA device.
std::unique_ptr<Backend> make_cuda_backend(int device,
                                           CudaAttention attention = CudaAttention::kMaterialized);

}  // namespace trainer_core
