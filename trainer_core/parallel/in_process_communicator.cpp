#include <barrier>
#include <cstring>
#include <stdexcept>

#include "trainer_core/parallel/communicator.h"

namespace trainer_core {

namespace {

struct SharedGroup {
  explicit SharedGroup(int n) : ranks(n), slots(size_t(n)), sync(n) {}
  int ranks;
  std::vector<std::vector<float>> slots;  // each rank's contribution
  std::barrier<> sync;
};

class InProcessCommunicator final : public Communicator {
 public:
  InProcessCommunicator(std::shared_ptr<SharedGroup> group, int rank) : group_(std::move(group)), rank_(rank) {}
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

}  // namespace trainer_core
