// CUDA device discovery. Returns no devices where CUDA was not compiled in or no driver/GPU is
// present (as on a build machine), never an error: callers fall back to the CPU.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace trainer_core {

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  size_t total_memory_bytes = 0;
  int compute_capability_major = 0;
  int compute_capability_minor = 0;
};

std::vector<CudaDeviceInfo> list_cuda_devices();
bool cuda_compiled_in();

}  // namespace trainer_core
