// N ranks at batch B/N must train like one rank at batch B: gradients summed by the
// communicator, each rank's loss scaled by 1/N, Muon's Newton-Schulz split across the ranks.
// Tolerance: 1e-5 relative on the weights after 3 steps (only the fp32 summation order
// differs); ranks agree with each other bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <thread>

#include "trainer_core/backend/cpu/cpu_backend.h"
#include "trainer_core/config/presets.h"
#include "trainer_core/model/gpt.h"
#include "trainer_core/optim/optimizer.h"
#include "trainer_core/parallel/communicator.h"

using namespace trainer_core;

namespace {

struct Replica {
  std::unique_ptr<Backend> backend = make_cpu_backend(1);
  Gpt model;
  Optimizer optimizer;
  Replica(const ModelConfig& m, const OptimizerConfig& o, Communicator* communicator = nullptr)
      : model(m, *backend),
        optimizer(o, model.params(), model.weights(), model.grads(), *backend, communicator) {
    model.init_weights(11);
  }
};

std::vector<int32_t> tokens(int sequences, int seq, int vocab, int salt) {
  std::vector<int32_t> t(size_t(sequences) * seq);
  for (size_t i = 0; i < t.size(); ++i) t[i] = int32_t((i * 131 + salt * 17 + i / 7) % vocab);
  return t;
}

void check_ranks_match_one_rank(const std::string& optimizer, int ranks) {
  const ModelConfig m = find_preset("micro")->model;
  OptimizerConfig o;
  o.name = *parse_name<OptimizerKind>(optimizer);
  const int batch = 8, seq = m.seq_len, steps = 3;
  Replica single(m, o);
  std::vector<double> reference_losses;
  for (int s = 0; s < steps; ++s) {
    const auto in = tokens(batch, seq, m.vocab_size, s),
               tg = tokens(batch, seq, m.vocab_size, s + 100);
    single.model.zero_grads();
    reference_losses.push_back(single.model.forward_backward(in.data(), tg.data(), batch, 1.0f));
    single.optimizer.step(1e-2f);
  }
  auto group = make_in_process_group(ranks);
  std::vector<std::unique_ptr<Replica>> replicas;
  for (int r = 0; r < ranks; ++r)
    replicas.push_back(std::make_unique<Replica>(m, o, group[size_t(r)].get()));
  std::vector<std::vector<double>> losses(static_cast<size_t>(ranks));
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] {
      Replica& rep = *replicas[size_t(r)];
      const int per_rank = batch / ranks;
      for (int s = 0; s < steps; ++s) {
        const auto in = tokens(batch, seq, m.vocab_size, s),
                   tg = tokens(batch, seq, m.vocab_size, s + 100);
        const size_t offset = size_t(r) * per_rank * seq;  // this rank's slice of the global batch
        rep.model.zero_grads();
        const double loss = rep.model.forward_backward(in.data() + offset, tg.data() + offset,
                                                       per_rank, 1.0f / ranks);
        group[size_t(r)]->all_reduce_sum(rep.model.grads(), rep.model.num_params());
        float global_loss = float(loss / ranks);
        group[size_t(r)]->all_reduce_sum(&global_loss, 1);
        losses[size_t(r)].push_back(global_loss);
        rep.optimizer.step(1e-2f);
      }
    });
  for (auto& t : threads) t.join();
  for (int s = 0; s < steps; ++s)
    EXPECT_NEAR(losses[0][size_t(s)], reference_losses[size_t(s)], 1e-5) << "step " << s;
  const size_t n = single.model.num_params();
  double diff = 0, norm = 0;
  for (size_t i = 0; i < n; ++i) {
    diff += std::pow(double(replicas[0]->model.weights()[i]) - single.model.weights()[i], 2);
    norm += std::pow(double(single.model.weights()[i]), 2);
    for (int r = 1; r < ranks; ++r)
      ASSERT_EQ(replicas[size_t(r)]->model.weights()[i], replicas[0]->model.weights()[i]);
  }
  EXPECT_LT(std::sqrt(diff / norm), 1e-5) << optimizer << " with " << ranks << " ranks";
}

TEST(DataParallel, TwoRanksAtHalfBatchTrainLikeOneRankAdamW) {
  check_ranks_match_one_rank("adamw", 2);
}
TEST(DataParallel, FourRanksAtQuarterBatchTrainLikeOneRankMuon) {
  check_ranks_match_one_rank("muon", 4);
}

TEST(DataParallel, MuonOrthogonalizationIsSplitAcrossRanks) {
  const ModelConfig m = find_preset("micro")->model;
  OptimizerConfig o;
  o.name = OptimizerKind::kMuon;
  Replica single(m, o);
  const int total = single.optimizer.muon_matrices_owned();
  ASSERT_GE(total, 3);
  auto group = make_in_process_group(3);
  int owned = 0;
  for (int r = 0; r < 3; ++r) {
    Replica rep(m, o, group[size_t(r)].get());
    EXPECT_GE(rep.optimizer.muon_matrices_owned(), 1)
        << "rank " << r << " does no Newton-Schulz work";
    owned += rep.optimizer.muon_matrices_owned();
  }
  EXPECT_EQ(owned, total) << "every Muon matrix has exactly one owner";
}

TEST(DataParallel, AFailingRankAbortsTheGroupInsteadOfHangingItsPeers) {
  auto group = make_in_process_group(2);
  std::thread peer([&] {
    float x = 1;
    EXPECT_THROW(group[1]->all_reduce_sum(&x, 1), GroupAborted);
  });
  group[0]->abort();  // rank 0 failed before its all-reduce
  peer.join();
  float y = 1;
  EXPECT_THROW(group[0]->all_reduce_sum(&y, 1), GroupAborted);
}

#if TRAINER_HAVE_NCCL
bool this_process_has_mapped(const std::string& library) {
  std::ifstream maps("/proc/self/maps");
  std::stringstream all;
  all << maps.rdbuf();
  return all.str().find(library) != std::string::npos;
}

// NCCL is loaded by the first multi-GPU group, not linked: this process links the trainer core
// and has not loaded it, a file that is not there is an error naming it and the way out, and
// the toolkit's library loads and answers.
TEST(NcclLibrary, IsLoadedOnlyWhenAMultiGpuJobNeedsIt) {
  EXPECT_FALSE(this_process_has_mapped("libnccl")) << "the trainer core links NCCL";
  try {
    load_nccl_library("/nonexistent/libnccl.so.2");
    FAIL() << "a missing NCCL loaded";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("cannot load NCCL from /nonexistent/libnccl.so.2"), std::string::npos)
        << what;
    EXPECT_NE(what.find("TRAINER_NCCL_LIBRARY"), std::string::npos) << what;
  }
  EXPECT_FALSE(this_process_has_mapped("libnccl"));
  // The CUDA toolkit's own NCCL (2.x: version codes from 20000 up).
  EXPECT_GE(load_nccl_library(nccl_library_file()), 20000);
  EXPECT_TRUE(this_process_has_mapped("libnccl"));
}
#endif

}  // namespace
