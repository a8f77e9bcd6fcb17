// The stream a CUDA backend enqueues all its work on, for code that must order its own GPU work
// against the backend's (the NCCL communicator's bucketed all-reduces). Only for CUDA sources.
#pragma once

#include <cuda_runtime.h>

#include "trainer_core/backend/backend.h"

namespace trainer_core {

// Throws std::invalid_argument when `backend` is not a CUDA backend.
cudaStream_t cuda_stream_of(Backend& backend);

}  // namespace trainer_core
