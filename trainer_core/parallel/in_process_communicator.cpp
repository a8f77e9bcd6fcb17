#include <condition_variable>
#include <mutex>
#include <stdexcept>

#include "trainer_core/parallel/communicator.h"

namespace trainer_core {

namespace {

// A reusable barrier that can be aborted (std::barrier cannot): waiters of an aborted group
// throw instead of blocking forever on a rank that died.
class AbortableBarrier {
 public:
  explicit AbortableBarrier(int parties) : parties_(parties) {}
  void arrive_and_wait() {
    std::unique_lock lock(mu_);
    if (aborted_) throw GroupAborted("another rank of the data-parallel group failed");
    const long long generation = generation_;
    if (++arrived_ == parties_) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
      return;
    }
    cv_.wait(lock, [&] { return generation_ != generation || aborted_; });
    if (generation_ == generation)
      throw GroupAborted("another rank of the data-parallel group failed");
  }
  void abort() {
    std::lock_guard lock(mu_);
    aborted_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  const int parties_;
  int arrived_ = 0;
  long long generation_ = 0;
  bool aborted_ = false;
};

struct SharedGroup {
  explicit SharedGroup(int n) : ranks(n), slots(size_t(n)), sync(n) {}
  int ranks;
  std::vector<std::vector<float>> slots;  // each rank's contribution
  AbortableBarrier sync;
};

class InProcessCommunicator final : public Communicator {
 public:
  InProcessCommunicator(std::shared_ptr<SharedGroup> group, int rank)
      : group_(std::move(group)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return group_->ranks; }
  void all_reduce_sum(float* data, size_t count) override {
    group_->slots[size_t(rank_)].assign(data, data + count);
    group_->sync.arrive_and_wait();  // every contribution is in place
    for (size_t i = 0; i < count; ++i) {
      float sum = 0;
      for (int r = 0; r < group_->ranks; ++r) sum += group_->slots[size_t(r)][i];
      data[i] = sum;
    }
    group_->sync.arrive_and_wait();  // nobody overwrites a slot another rank still reads
  }
  void start_all_reduce_sum(float* data, size_t count, Backend&) override {
    all_reduce_sum(data, count);
  }
  void finish_all_reduces(Backend&) override {}
  void abort() override { group_->sync.abort(); }

 private:
  std::shared_ptr<SharedGroup> group_;
  int rank_;
};

}  // namespace

std::vector<std::unique_ptr<Communicator>> make_in_process_group(int ranks) {
  if (ranks < 1) throw std::invalid_argument("a communicator group needs at least one rank");
  auto group = std::make_shared<SharedGroup>(ranks);
  std::vector<std::unique_ptr<Communicator>> out;
  for (int r = 0; r < ranks; ++r) out.push_back(std::make_unique<InProcessCommunicator>(group, r));
  return out;
}

std::vector<std::unique_ptr<Communicator>> make_group(const std::string& backend, int ranks) {
  if (backend == "cuda") return make_nccl_group(ranks);
  return make_in_process_group(ranks);
}

}  // namespace trainer_core
