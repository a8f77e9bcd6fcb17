// The tokens a run trains and evaluates on, with a train/validation split:
//   - data.train / data.val: token shards (token_shards.h) prepared elsewhere, read by position;
//   - otherwise data.corpus, prepared once (prepare_data.h) into shards under data.cache_dir,
//     the last data.val_fraction of its tokens the validation split.
// Training windows of seq+1 tokens are drawn by an RNG seeded from (seed, step, rank, window)
// only, uniformly over every window start of the concatenated training shards (a window never
// crosses a shard boundary), so a resumed run, another micro-batch split or another number of
// ranks sees exactly the batches an uninterrupted run would. Validation windows are the fixed,
// disjoint windows of the validation shards in order.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "trainer_core/config/train_config.h"
#include "trainer_core/data/token_shards.h"

namespace trainer_core {

// Which data a run used, recorded in its summary so that results never compare runs trained on
// different data. id: the dataset_id of the shards' manifest.json (prepare-data), or the sha256
// of the corpus's cached token shard; empty when shards come without a manifest.
struct DatasetProvenance {
  std::string id;
  std::string source;  // the data.train spec, or the corpus name
  std::string val;     // the data.val spec, or "last <val_fraction> of the corpus"
  std::string manifest;
};

class TokenDataset {
 public:
  static TokenDataset load(const DataConfig& data);
  static TokenDataset from_tokens(std::vector<uint16_t> tokens, double val_fraction, int vocab);
  // Whole sources as the train and validation splits (tests and benchmarks).
  static TokenDataset from_sources(std::vector<std::shared_ptr<const TokenSource>> train,
                                   std::vector<std::shared_ptr<const TokenSource>> val, int vocab);

  int vocab_size() const { return vocab_size_; }  // the tokenizer's; 0 when unknown (shards)
  size_t train_tokens() const { return train_.total; }
  size_t val_tokens() const { return val_.total; }
  const std::string& cache_path() const { return cache_path_; }  // the corpus's shard directory
  const DatasetProvenance& provenance() const { return provenance_; }

  // Throws, naming the shard, when a training shard is shorter than one window of seq+1 tokens
  // or no validation window fits. Every id read is checked against `vocab_limit` (the model's
  // vocabulary) and an id at or above it throws with its shard and position.
  void check(int seq, int vocab_limit);

  // Windows first_window .. first_window+batch-1 of this step's random draw of seq+1-token
  // windows from the training split; a function of (seed, step, rank, window) only.
  void sample_train(uint64_t seed, int64_t step, int rank, int first_window, int batch, int seq,
                    int32_t* inputs, int32_t* targets) const;
  // Number of disjoint validation windows of seq+1 tokens.
  size_t val_windows(int seq) const;
  void val_batch(size_t first_window, int batch, int seq, int32_t* inputs, int32_t* targets) const;

 private:
  struct Span {
    std::shared_ptr<const TokenSource> source;
    size_t offset = 0, count = 0;
  };
  struct Split {
    std::vector<Span> spans;
    std::vector<size_t> before;  // tokens in the spans before span i
    size_t total = 0;
    void add(Span s);
  };
  void copy_window(const Span& span, size_t start, int seq, int32_t* inputs,
                   int32_t* targets) const;
  Split train_, val_;
  int vocab_size_ = 0;
  int vocab_limit_ = 0;  // 0: not checked
  std::string cache_path_;
  DatasetProvenance provenance_;
};

}  // namespace trainer_core
