#include <stdexcept>

#include "trainer_core/backend/backend.h"
#include "trainer_core/backend/cpu/cpu_backend.h"
#include "trainer_core/backend/cuda/device_query.h"

namespace trainer_core {

std::unique_ptr<Backend> make_backend(const std::string& name, int threads) {
  if (name == "cpu") return make_cpu_backend(threads);
  if (name == "cuda") {
    if (!cuda_compiled_in())
      throw std::runtime_error("backend 'cuda': this build has no CUDA support (nvcc not found at build time)");
    if (list_cuda_devices().empty())
      throw std::runtime_error("backend 'cuda': no CUDA device or driver present");
    // The device operations arrive with the CUDA backend issue; until then say so plainly.
    throw std::runtime_error("backend 'cuda': training kernels are not implemented yet; use backend 'cpu'");
  }
  throw std::runtime_error("unknown backend '" + name + "' (expected cpu or cuda)");
}

}  // namespace trainer_core
