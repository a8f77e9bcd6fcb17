// Data parallelism: a group of ranks that sum gradients. Two implementations: NCCL for GPUs (one
// rank per device, each driven by its own thread of one process) and an in-process CPU group
// (one thread per rank), so the multi-rank code path runs and is tested on any machine.
//
// Buffers passed to a communicator live in the rank's backend memory (device memory for NCCL).
// Reductions are fp32 sums; every rank ends with the same bits.
#pragma once

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace trainer_core {

class Backend;

// Thrown on the ranks still waiting when another rank of the group failed and aborted it.
class GroupAborted : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // In place: every rank ends with the elementwise sum over ranks. Blocks until every rank has
  // called it; throws GroupAborted if the group was aborted meanwhile.
  virtual void all_reduce_sum(float* data, size_t count) = 0;
  // Bucketed sums that overlap the backward pass. start_all_reduce_sum begins the in-place sum of
  // one bucket once the work `producer` (this rank's backend) has enqueued so far is done, and
  // returns; every rank starts the same buckets in the same order. finish_all_reduces makes the
  // producer's later work see every started sum: on a GPU by a stream wait, without blocking
  // the host; on the CPU each start already summed its bucket (the threads' work is synchronous).
  virtual void start_all_reduce_sum(float* data, size_t count, Backend& producer) = 0;
  virtual void finish_all_reduces(Backend& producer) = 0;
  // Called by a rank that failed: every other rank's pending or next collective throws
  // GroupAborted instead of waiting for it forever.
  virtual void abort() = 0;
};

// N communicators sharing one in-process group; hand one to each rank's thread. The sum runs in
// rank order, so results are also bit-identical to a serial sum.
std::vector<std::unique_ptr<Communicator>> make_in_process_group(int ranks);

// One NCCL communicator per CUDA device 0..ranks-1 (ncclCommInitAll), for one thread per device.
// Throws where the build has no NCCL, NCCL cannot be loaded, or fewer devices are visible.
std::vector<std::unique_ptr<Communicator>> make_nccl_group(int ranks);

// NCCL is loaded by the first multi-GPU group, not linked: CPU and single-GPU jobs run on a
// machine that lacks it (or keeps it only inside a Python package). The file loaded:
// $TRAINER_NCCL_LIBRARY when set, else libnccl.so.2 wherever the loader finds it.
std::string nccl_library_file();
// Loads NCCL from `file` and returns its version code (22809 for 2.28.9); throws
// std::runtime_error naming the file, the loader's reason and how to point at another one.
int load_nccl_library(const std::string& file);

// The group for a backend by name: "cpu" → in-process, "cuda" → NCCL.
std::vector<std::unique_ptr<Communicator>> make_group(const std::string& backend, int ranks);

}  // namespace trainer_core
