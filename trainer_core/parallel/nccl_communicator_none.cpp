// Builds without NCCL: multi-GPU groups are refused with the reason.
#include "trainer_core/parallel/communicator.h"

namespace trainer_core {

std::vector<std::unique_ptr<Communicator>> make_nccl_group(int ranks) {
  throw std::runtime_error(
      "data parallelism over " + std::to_string(ranks) +
      " GPUs needs NCCL, which this build does not have (install NCCL with the CUDA "
      "toolkit and rebuild)");
}

std::string nccl_library_file() { return "libnccl.so.2"; }

int load_nccl_library(const std::string& file) {
  throw std::runtime_error("this build has no NCCL, so " + file + " is never loaded");
}

}  // namespace trainer_core
