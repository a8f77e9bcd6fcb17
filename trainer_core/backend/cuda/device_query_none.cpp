// Built instead of device_query.cu when nvcc is not available.
#include "trainer_core/backend/cuda/device_query.h"

namespace trainer_core {

bool cuda_compiled_in() { return false; }
std::vector<CudaDeviceInfo> list_cuda_devices() { return {}; }
std::string cuda_unusable_reason() { return ""; }

}  // namespace trainer_core
