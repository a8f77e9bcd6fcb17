// NCCL data parallelism: one communicator per GPU of this process, created together with
// ncclCommInitAll; each rank's thread drives its own device.
//
// Ordering: the rank's backend enqueues its work on its own stream, so a collective first waits
// for the device to finish (cudaDeviceSynchronize), runs on the communicator's stream and waits
// for it again. Simple and correct; overlapping the all-reduce with the backward pass is the next
// step when the step time shows it matters. Sums are fp32 (ncclFloat, ncclSum); NCCL's ring
// all-reduce leaves the same bits on every rank.
#include <cuda_runtime.h>
#include <nccl.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "trainer_core/backend/cuda/cuda_check.h"
#include "trainer_core/parallel/communicator.h"

namespace trainer_core {

namespace {

#define TC_NCCL_CHECK(call)                                                                     \
  do {                                                                                          \
    const ncclResult_t tc_result_ = (call);                                                     \
    if (tc_result_ != ncclSuccess)                                                              \
      throw std::runtime_error(std::string("NCCL error: ") + #call +                            \
                               " at nccl_communicator.cpp:" + std::to_string(__LINE__) + ": " + \
                               ncclGetErrorString(tc_result_));                                 \
  } while (0)

// The communicators of one group. Aborting aborts all of them: a rank blocked inside a
// collective whose peer died only returns once its own communicator is aborted too.
struct NcclGroup {
  std::vector<ncclComm_t> comms;
  std::mutex mu;
  bool aborted = false;
  void abort_all() {
    std::lock_guard lock(mu);
    if (aborted) return;
    aborted = true;
    for (size_t r = 0; r < comms.size(); ++r) {
      cudaSetDevice(int(r));
      ncclCommAbort(comms[r]);
    }
  }
  ~NcclGroup() {
    if (aborted) return;
    for (size_t r = 0; r < comms.size(); ++r) {
      cudaSetDevice(int(r));
      ncclCommDestroy(comms[r]);
    }
  }
};

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(std::shared_ptr<NcclGroup> group, int rank)
      : group_(std::move(group)), rank_(rank) {
    TC_CUDA_CHECK(cudaSetDevice(rank_));
    TC_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  }
  ~NcclCommunicator() override {
    cudaSetDevice(rank_);
    cudaStreamDestroy(stream_);
  }
  int rank() const override { return rank_; }
  int size() const override { return int(group_->comms.size()); }
  void all_reduce_sum(float* data, size_t count) override {
    throw_if_aborted();
    TC_CUDA_CHECK(cudaSetDevice(rank_));
    TC_CUDA_CHECK(cudaDeviceSynchronize());  // the backend's stream has produced `data`
    TC_NCCL_CHECK(ncclAllReduce(data, data, count, ncclFloat, ncclSum, group_->comms[size_t(rank_)],
                                stream_));
    const cudaError_t status = cudaStreamSynchronize(stream_);
    throw_if_aborted();
    TC_CUDA_CHECK(status);
  }
  void abort() override { group_->abort_all(); }

 private:
  void throw_if_aborted() {
    std::lock_guard lock(group_->mu);
    if (group_->aborted) throw GroupAborted("another rank of the data-parallel group failed");
  }
  std::shared_ptr<NcclGroup> group_;
  int rank_;
  cudaStream_t stream_ = nullptr;
};

}  // namespace

std::vector<std::unique_ptr<Communicator>> make_nccl_group(int ranks) {
  int visible = 0;
  TC_CUDA_CHECK(cudaGetDeviceCount(&visible));
  if (ranks < 1 || ranks > visible)
    throw std::runtime_error("data parallelism over " + std::to_string(ranks) + " GPUs, but " +
                             std::to_string(visible) + " are visible");
  auto group = std::make_shared<NcclGroup>();
  group->comms.resize(size_t(ranks));
  std::vector<int> devices(static_cast<size_t>(ranks));
  for (int r = 0; r < ranks; ++r) devices[size_t(r)] = r;
  TC_NCCL_CHECK(ncclCommInitAll(group->comms.data(), ranks, devices.data()));
  std::vector<std::unique_ptr<Communicator>> out;
  for (int r = 0; r < ranks; ++r) out.push_back(std::make_unique<NcclCommunicator>(group, r));
  return out;
}

}  // namespace trainer_core
