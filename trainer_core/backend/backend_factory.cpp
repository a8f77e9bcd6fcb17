#include <stdexcept>

#include "trainer_core/backend/backend.h"
#include "trainer_core/backend/cpu/cpu_backend.h"
#include "trainer_core/backend/cuda/device_query.h"
#ifdef TRAINER_HAVE_CUDA
#include "trainer_core/backend/cuda/cuda_backend.h"
#endif

namespace trainer_core {

std::unique_ptr<Backend> make_backend(const std::string& name, int threads, int device) {
  if (name == "cpu") return make_cpu_backend(threads);
  if (name == "cuda") {
#ifdef TRAINER_HAVE_CUDA
    const auto devices = list_cuda_devices();
    if (devices.empty()) {
      const std::string reason = cuda_unusable_reason();
      throw std::runtime_error("backend 'cuda': " +
                               (reason.empty() ? "no CUDA device or driver present" : reason));
    }
    if (device < 0 || device >= int(devices.size()))
      throw std::runtime_error("backend 'cuda': device " + std::to_string(device) +
                               " requested but " + std::to_string(devices.size()) + " visible");
    return make_cuda_backend(device);
#else
    (void)device;
    throw std::runtime_error(
        "backend 'cuda': this build has no CUDA support (nvcc not found at build time)");
#endif
  }
  throw std::runtime_error("unknown backend '" + name + "' (expected cpu or cuda)");
}

}  // namespace trainer_core
