// Data parallelism: a group of ranks that sum gradients. The NCCL implementation (GPUs, one
// rank per device) comes with the CUDA backend; the in-process one (one thread per rank) runs the
// same code path on any machine, so the multi-rank logic is tested everywhere.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace trainer_core {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // In place: every rank ends with the sum over ranks, reduced in rank order, so all ranks hold
  // bit-identical results. Blocks until every rank has called it.
  virtual void all_reduce_sum(float* data, size_t count) = 0;
};

// N communicators sharing one in-process group; hand one to each rank's thread.
std::vector<std::unique_ptr<Communicator>> make_in_process_group(int ranks);

}  // namespace trainer_core
