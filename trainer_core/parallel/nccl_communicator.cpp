// NCCL data parallelism: one communicator per GPU of this process, created together with
// ncclCommInitAll; each rank's thread drives its own device.
//
// Ordering: the rank's backend enqueues its work on its own stream. all_reduce_sum (small
// reductions) waits for the device, runs on the communicator's stream and waits for it again.
// The gradient buckets overlap the backward instead: start_all_reduce_sum records an event on
// the backend's stream, makes the communicator's stream wait for it and enqueues the all-reduce
// there; finish_all_reduces makes the backend's stream wait for the last one. The host never
// blocks on either. Sums are fp32 (ncclFloat, ncclSum); NCCL's ring all-reduce leaves the same
// bits on every rank.
//
// NCCL itself is loaded with dlopen when the first group is made (communicator.h says why); its
// header gives the functions' types, and NcclApi holds the ones used here.
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <nccl.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include "trainer_core/backend/cuda/cuda_check.h"
#include "trainer_core/backend/cuda/cuda_stream.h"
#include "trainer_core/parallel/communicator.h"

namespace trainer_core {

namespace {

// The NCCL functions this file calls, resolved from one loaded library.
struct NcclApi {
  decltype(&ncclGetVersion) get_version = nullptr;
  decltype(&ncclGetErrorString) error_string = nullptr;
  decltype(&ncclCommInitAll) comm_init_all = nullptr;
  decltype(&ncclCommAbort) comm_abort = nullptr;
  decltype(&ncclCommDestroy) comm_destroy = nullptr;
  decltype(&ncclAllReduce) all_reduce = nullptr;
  decltype(&ncclGroupStart) group_start = nullptr;
  decltype(&ncclGroupEnd) group_end = nullptr;
};

// Loads `file` and resolves every function, or throws saying what is missing and where to point.
// The library stays loaded for the life of the process (communicators may outlive any caller).
NcclApi open_nccl(const std::string& file) {
  const std::string how =
      "; data parallelism across GPUs needs NCCL: put the folder holding libnccl.so.2 on "
      "LD_LIBRARY_PATH (for example a Python environment's site-packages/nvidia/nccl/lib) or "
      "name the file in TRAINER_NCCL_LIBRARY";
  void* handle = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* reason = dlerror();
    throw std::runtime_error("cannot load NCCL from " + file + " (" +
                             (reason ? reason : "no reason given") + ")" + how);
  }
  NcclApi api;
  const auto bind = [&](auto& slot, const char* name) {
    void* symbol = dlsym(handle, name);
    if (symbol == nullptr)
      throw std::runtime_error(file + " has no " + name + ": not an NCCL library" + how);
    slot = reinterpret_cast<std::remove_reference_t<decltype(slot)>>(symbol);
  };
  bind(api.get_version, "ncclGetVersion");
  bind(api.error_string, "ncclGetErrorString");
  bind(api.comm_init_all, "ncclCommInitAll");
  bind(api.comm_abort, "ncclCommAbort");
  bind(api.comm_destroy, "ncclCommDestroy");
  bind(api.all_reduce, "ncclAllReduce");
  bind(api.group_start, "ncclGroupStart");
  bind(api.group_end, "ncclGroupEnd");
  return api;
}

// The process's NCCL, loaded at the first call (a failed load is retried by the next call).
const NcclApi& nccl() {
  static const NcclApi api = open_nccl(nccl_library_file());
  return api;
}

#define TC_NCCL_CHECK(call)                                                                     \
  do {                                                                                          \
    const ncclResult_t tc_result_ = (call);                                                     \
    if (tc_result_ != ncclSuccess)                                                              \
      throw std::runtime_error(std::string("NCCL error: ") + #call +                            \
                               " at nccl_communicator.cpp:" + std::to_string(__LINE__) + ": " + \
                               nccl().error_string(tc_result_));                                \
  } while (0)

// The communicators of one group. Aborting aborts all of them: a rank blocked inside a
// collective whose peer died only returns once its own communicator is aborted too.
// Invariant: a communicator is called (its collective enqueued) only while its own mutex is held
// and the group is not aborted, and abort takes that mutex before freeing it, so no rank ever
// calls a freed communicator. Nobody holds the mutex while waiting for a collective to finish:
// the abort is what ends such a wait.
struct NcclGroup {
  std::vector<ncclComm_t> comms;
  std::vector<std::unique_ptr<std::mutex>> comm_mu;  // one per communicator
  std::mutex abort_mu;
  std::atomic<bool> aborted{false};
  void abort_all() {
    std::lock_guard lock(abort_mu);
    if (aborted.exchange(true)) return;
    for (size_t r = 0; r < comms.size(); ++r) {
      std::lock_guard calling(*comm_mu[r]);
      cudaSetDevice(int(r));
      nccl().comm_abort(comms[r]);
    }
  }
  ~NcclGroup() {
    if (aborted) return;
    for (size_t r = 0; r < comms.size(); ++r) {
      cudaSetDevice(int(r));
      nccl().comm_destroy(comms[r]);
    }
  }
};

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(std::shared_ptr<NcclGroup> group, int rank)
      : group_(std::move(group)), rank_(rank) {
    TC_CUDA_CHECK(cudaSetDevice(rank_));
    TC_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    TC_CUDA_CHECK(cudaEventCreateWithFlags(&produced_, cudaEventDisableTiming));
    TC_CUDA_CHECK(cudaEventCreateWithFlags(&reduced_, cudaEventDisableTiming));
  }
  ~NcclCommunicator() override {
    cudaSetDevice(rank_);
    cudaEventDestroy(produced_);
    cudaEventDestroy(reduced_);
    cudaStreamDestroy(stream_);
  }
  int rank() const override { return rank_; }
  int size() const override { return int(group_->comms.size()); }
  void all_reduce_sum(float* data, size_t count) override {
    throw_if_aborted();
    check(cudaSetDevice(rank_), "cudaSetDevice");
    check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");  // the backend's stream made `data`
    {
      std::lock_guard calling(*group_->comm_mu[size_t(rank_)]);
      throw_if_aborted();
      const ncclResult_t enqueued = nccl().all_reduce(data, data, count, ncclFloat, ncclSum,
                                                      group_->comms[size_t(rank_)], stream_);
      if (enqueued != ncclSuccess)
        fail(std::string("ncclAllReduce: ") + nccl().error_string(enqueued));
    }
    check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize after ncclAllReduce");
    throw_if_aborted();
  }
  void start_all_reduce_sum(float* data, size_t count, Backend& producer) override {
    throw_if_aborted();
    check(cudaSetDevice(rank_), "cudaSetDevice");
    // The bucket is final once the backend's stream reaches this point.
    check(cudaEventRecord(produced_, cuda_stream_of(producer)), "cudaEventRecord");
    check(cudaStreamWaitEvent(stream_, produced_, 0), "cudaStreamWaitEvent");
    std::lock_guard calling(*group_->comm_mu[size_t(rank_)]);
    throw_if_aborted();
    const ncclResult_t enqueued = nccl().all_reduce(data, data, count, ncclFloat, ncclSum,
                                                    group_->comms[size_t(rank_)], stream_);
    if (enqueued != ncclSuccess)
      fail(std::string("ncclAllReduce: ") + nccl().error_string(enqueued));
  }
  void finish_all_reduces(Backend& producer) override {
    throw_if_aborted();
    check(cudaSetDevice(rank_), "cudaSetDevice");
    check(cudaEventRecord(reduced_, stream_), "cudaEventRecord");
    check(cudaStreamWaitEvent(cuda_stream_of(producer), reduced_, 0), "cudaStreamWaitEvent");
  }
  void abort() override { group_->abort_all(); }

 private:
  void throw_if_aborted() {
    if (group_->aborted) throw GroupAborted("another rank of the data-parallel group failed");
  }
  // After an abort every error of this rank is the abort's consequence: GroupAborted, so that the
  // failing rank's own error is the one reported, not this one.
  [[noreturn]] void fail(const std::string& what) {
    throw_if_aborted();
    throw std::runtime_error("NCCL rank " + std::to_string(rank_) + ": " + what);
  }
  void check(cudaError_t status, const char* what) {
    if (status != cudaSuccess) fail(std::string(what) + ": " + cudaGetErrorString(status));
  }
  std::shared_ptr<NcclGroup> group_;
  int rank_;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t produced_ = nullptr, reduced_ = nullptr;
};

}  // namespace

std::string nccl_library_file() {
  const char* named = std::getenv("TRAINER_NCCL_LIBRARY");
  return named != nullptr && *named != '\0' ? named : "libnccl.so.2";
}

int load_nccl_library(const std::string& file) {
  int version = 0;
  const NcclApi api = open_nccl(file);
  if (api.get_version(&version) != ncclSuccess)
    throw std::runtime_error(file + ": ncclGetVersion failed");
  return version;
}

std::vector<std::unique_ptr<Communicator>> make_nccl_group(int ranks) {
  nccl();  // first: a machine without NCCL says so before anything else is checked
  int visible = 0;
  TC_CUDA_CHECK(cudaGetDeviceCount(&visible));
  if (ranks < 1 || ranks > visible)
    throw std::runtime_error("data parallelism over " + std::to_string(ranks) + " GPUs, but " +
                             std::to_string(visible) + " are visible");
  auto group = std::make_shared<NcclGroup>();
  group->comms.resize(size_t(ranks));
  for (int r = 0; r < ranks; ++r) group->comm_mu.push_back(std::make_unique<std::mutex>());
  std::vector<int> devices(static_cast<size_t>(ranks));
  for (int r = 0; r < ranks; ++r) devices[size_t(r)] = r;
  // NCCL connects its peers lazily, at a communicator's first collective of each kind, and that
  // first call blocks until every peer has made it. A rank's call holds its communicator's mutex
  // (NcclGroup's invariant), so a peer that died before its first collective would leave
  // abort_all waiting on that mutex for ever. So the connections are made here, before any rank
  // runs: all at init (NCCL_RUNTIME_CONNECT=0, unless the user set it), and one all-reduce of
  // every communicator together in one group call from this thread.
  setenv("NCCL_RUNTIME_CONNECT", "0", /*overwrite=*/0);
  TC_NCCL_CHECK(nccl().comm_init_all(group->comms.data(), ranks, devices.data()));
  std::vector<float*> probes(static_cast<size_t>(ranks), nullptr);
  for (int r = 0; r < ranks; ++r) {
    TC_CUDA_CHECK(cudaSetDevice(r));
    TC_CUDA_CHECK(cudaMalloc(&probes[size_t(r)], sizeof(float)));
    TC_CUDA_CHECK(cudaMemset(probes[size_t(r)], 0, sizeof(float)));
  }
  TC_NCCL_CHECK(nccl().group_start());
  for (int r = 0; r < ranks; ++r)
    TC_NCCL_CHECK(nccl().all_reduce(probes[size_t(r)], probes[size_t(r)], 1, ncclFloat, ncclSum,
                                    group->comms[size_t(r)], cudaStreamLegacy));
  TC_NCCL_CHECK(nccl().group_end());
  for (int r = 0; r < ranks; ++r) {
    TC_CUDA_CHECK(cudaSetDevice(r));
    TC_CUDA_CHECK(cudaDeviceSynchronize());
    TC_CUDA_CHECK(cudaFree(probes[size_t(r)]));
  }
  std::vector<std::unique_ptr<Communicator>> out;
  for (int r = 0; r < ranks; ++r) out.push_back(std::make_unique<NcclCommunicator>(group, r));
  return out;
}

}  // namespace trainer_core
