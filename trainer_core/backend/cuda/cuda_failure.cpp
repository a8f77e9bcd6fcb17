// Compiled with or without nvcc, so that the wording is tested on every machine.
#include "trainer_core/backend/cuda/device_query.h"

namespace trainer_core {

namespace {
std::string cuda_version_text(int v) {
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}
}  // namespace

std::string describe_cuda_failure(int driver_version, int runtime_version,
                                  const std::string& error) {
  if (driver_version == 0) return "";  // no NVIDIA driver: a machine without GPUs
  if (driver_version < runtime_version)
    return "the NVIDIA driver supports CUDA " + cuda_version_text(driver_version) +
           ", older than this build's CUDA runtime " + cuda_version_text(runtime_version) +
           ": update the driver (" + error + ")";
  return "the NVIDIA driver (CUDA " + cuda_version_text(driver_version) +
         ") is present but no device can be used: " + error;
}

}  // namespace trainer_core
