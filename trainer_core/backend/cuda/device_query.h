// CUDA device discovery. list_cuda_devices() returns no devices where CUDA was not compiled in or
// no GPU can be used, never an error: callers fall back to the CPU. But a GPU that is present and
// unusable (a driver older than this build's CUDA runtime, say) must not pass for "no GPU":
// cuda_unusable_reason() says why, and whoever falls back says so aloud.
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

// Empty when the devices are usable or when there is no NVIDIA driver at all (a machine without
// GPUs); otherwise what is wrong and what to do.
std::string cuda_unusable_reason();

// The wording of that reason from the driver's and the runtime's CUDA versions (1000 major +
// 10 minor, as cudaDriverGetVersion gives them; 0: no driver) and the runtime's error text.
std::string describe_cuda_failure(int driver_version, int runtime_version,
                                  const std::string& error);

}  // namespace trainer_core
