// Turning CUDA, cuBLAS and NCCL status codes into exceptions that name the call and where it was
// made, so a failed job's reason reads "cudaMalloc(...) at cuda_backend.cpp:88: out of memory"
// instead of a later crash or hang.
#pragma once

#include <stdexcept>
#include <string>

#include "trainer_core/backend/backend.h"

namespace trainer_core::cuda {

// Out of device memory: the backends' common type (backend.h), so the job is not retried.
using OutOfMemory = ::trainer_core::OutOfMemory;

[[noreturn]] void throw_cuda_error(int code, const char* call, const char* file, int line);
[[noreturn]] void throw_cublas_error(int code, const char* call, const char* file, int line);

}  // namespace trainer_core::cuda

#define TC_CUDA_CHECK(call)                                                               \
  do {                                                                                    \
    const cudaError_t tc_status_ = (call);                                                \
    if (tc_status_ != cudaSuccess)                                                        \
      ::trainer_core::cuda::throw_cuda_error(int(tc_status_), #call, __FILE__, __LINE__); \
  } while (0)

#define TC_CUBLAS_CHECK(call)                                                               \
  do {                                                                                      \
    const cublasStatus_t tc_status_ = (call);                                               \
    if (tc_status_ != CUBLAS_STATUS_SUCCESS)                                                \
      ::trainer_core::cuda::throw_cublas_error(int(tc_status_), #call, __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: a bad launch configuration surfaces here, at the launching line.
#define TC_CUDA_CHECK_LAUNCH() TC_CUDA_CHECK(cudaGetLastError())
