// A checkpoint file with arbitrary bytes: load_checkpoint restores it or refuses it with a
// message, never a crash, an out-of-bounds read or an allocation beyond the file's size. With
// FUZZ_CHECKPOINT_SEED_DIR set, it first writes a real checkpoint there as the seed corpus.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>

#include "trainer_core/backend/backend.h"
#include "trainer_core/model/gpt.h"
#include "trainer_core/optim/optimizer.h"
#include "trainer_core/train/checkpoint.h"

namespace {

using namespace trainer_core;

struct Run {
  std::unique_ptr<Backend> backend = make_backend("cpu", 1, 0);
  std::unique_ptr<Gpt> model;
  std::unique_ptr<Optimizer> optimizer;
  Run() {
    ModelConfig m;
    m.n_layer = 1, m.hidden = 16, m.n_head = 2, m.ffn_hidden = 32, m.vocab_size = 64,
    m.seq_len = 16;
    model = std::make_unique<Gpt>(m, *backend);
    model->init_weights(1);
    OptimizerConfig o;
    o.name = OptimizerKind::kMuon;
    optimizer = std::make_unique<Optimizer>(o, model->params(), model->weights(), model->grads(),
                                            *backend, nullptr);
  }
};

Run& run() {
  static Run r;
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("FUZZ_CHECKPOINT_SEED_DIR")) {
    TrainingProgress progress;
    progress.next_step = 3;
    progress.evals.push_back({2, 4.5, 0.5});
    save_checkpoint(std::string(dir) + "/valid.ckpt", "fuzz", *run().model, *run().optimizer,
                    progress, *run().backend);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/fuzz_checkpoint_" + std::to_string(::getpid()) + ".ckpt";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    TrainingProgress progress;
    load_checkpoint(path, "fuzz", *run().model, *run().optimizer, progress, *run().backend);
  } catch (const std::runtime_error&) {
  }
  return 0;
}
