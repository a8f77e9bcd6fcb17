// Tokenized corpus with a train/validation split. The corpus is tokenized once into a cached
// binary token file (uint16 ids); later runs read the cache. Training windows are drawn by an
// RNG seeded from (seed, step, rank, micro-batch) only, so a resumed run sees exactly the
// batches an uninterrupted run would.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainer_core/config/train_config.h"

namespace trainer_core {

class TokenDataset {
 public:
  // Tokenizes data.corpus with data.tokenizer (or reads the cache) and splits off the last
  // val_fraction of tokens for validation.
  static TokenDataset load(const DataConfig& data);
  static TokenDataset from_tokens(std::vector<uint16_t> tokens, double val_fraction, int vocab);

  int vocab_size() const { return vocab_size_; }
  size_t train_tokens() const { return split_; }
  size_t val_tokens() const { return tokens_.size() - split_; }
  const std::string& cache_path() const { return cache_path_; }

  // Windows first_window .. first_window+batch-1 of this step's random draw of seq+1-token
  // windows from the training split; a function of (seed, step, rank, window) only.
  void sample_train(uint64_t seed, int64_t step, int rank, int first_window, int batch, int seq,
                    int32_t* inputs, int32_t* targets) const;
  // Number of disjoint validation windows of seq+1 tokens.
  size_t val_windows(int seq) const;
  void val_batch(size_t first_window, int batch, int seq, int32_t* inputs, int32_t* targets) const;

 private:
  void copy_window(size_t start, int seq, int32_t* inputs, int32_t* targets) const;
  std::vector<uint16_t> tokens_;
  size_t split_ = 0;
  int vocab_size_ = 0;
  std::string cache_path_;
};

}  // namespace trainer_core
