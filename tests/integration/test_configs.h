// Small real-corpus configs for the integration tests (a few seconds each on two cores).
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "trainer_core/config/train_config.h"

namespace test_configs {

inline std::string temp_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("trainer_it_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

// The micro preset on the first 2 MB of GCIDE, byte-level.
inline trainer_core::TrainConfig micro(const std::string& dir) {
  trainer_core::TrainConfig c;
  c.name = "micro";
  c.model.preset = "micro";
  c.model.n_layer = 1;
  c.model.hidden = 32;
  c.model.n_head = 2;
  c.model.ffn_hidden = 64;
  c.model.seq_len = 32;
  c.optimizer.lr = 3e-3;
  c.training.max_steps = 40;
  c.training.micro_batch = 8;
  c.training.batch_tokens = 8 * 32;
  c.training.eval_every = 10;
  c.training.eval_tokens = 2048;
  // TEST_CORPUS: a path to the corpus file where Debian's dict-gcide is not installed (a GPU
  // machine running the bundle of scripts/gpu-check.sh).
  const char* corpus = std::getenv("TEST_CORPUS");
  c.data.corpus = corpus ? corpus : "gcide";
  c.data.max_corpus_bytes = 2 << 20;
  c.data.cache_dir = dir + "/cache";
  c.threads = 2;
  return c;
}

}  // namespace test_configs
