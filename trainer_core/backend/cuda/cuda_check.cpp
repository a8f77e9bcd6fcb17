#include "trainer_core/backend/cuda/cuda_check.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstring>

namespace trainer_core::cuda {

namespace {
std::string where(const char* call, const char* file, int line) {
  const char* base = std::strrchr(file, '/');
  return std::string(call) + " at " + (base ? base + 1 : file) + ":" + std::to_string(line);
}
}  // namespace

void throw_cuda_error(int code, const char* call, const char* file, int line) {
  const auto status = cudaError_t(code);
  cudaGetLastError();  // clear a non-sticky error so the next call reports its own status
  const std::string message = where(call, file, line) + ": " + cudaGetErrorName(status) + " (" +
                              cudaGetErrorString(status) + ")";
  if (status == cudaErrorMemoryAllocation) throw OutOfMemory("CUDA out of memory: " + message);
  throw std::runtime_error("CUDA error: " + message);
}

void throw_cublas_error(int code, const char* call, const char* file, int line) {
  const auto status = cublasStatus_t(code);
  const std::string message = where(call, file, line) + ": " + cublasGetStatusName(status) + " (" +
                              cublasGetStatusString(status) + ")";
  if (status == CUBLAS_STATUS_ALLOC_FAILED) throw OutOfMemory("cuBLAS out of memory: " + message);
  throw std::runtime_error("cuBLAS error: " + message);
}

}  // namespace trainer_core::cuda
