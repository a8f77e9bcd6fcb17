#include "trainer_core/data/token_dataset.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <stdexcept>

#include "trainer_core/data/corpus.h"
#include "trainer_core/data/prepare_data.h"
#include "trainer_core/data/token_shards.h"
#include "trainer_core/data/tokenizer.h"
#include "trainer_core/util/rng.h"

namespace trainer_core {

namespace fs = std::filesystem;

namespace {

// Where a corpus's shards are cached: one directory per corpus, tokenizer and split.
std::string cache_dir_name(const DataConfig& data, const CorpusSource& src,
                           const Tokenizer& tokenizer) {
  const std::string key = src.path + "|" + tokenizer.identity() + "|" +
                          std::to_string(data.max_corpus_bytes) + "|" +
                          std::to_string(data.val_fraction);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", (unsigned long long)std::hash<std::string>{}(key));
  return fs::path(src.path).filename().string() + "." + name_of(data.tokenizer) + "." + hex;
}

void add_shards(const std::string& spec, const std::string& field, auto& split) {
  for (const std::string& path : expand_shard_spec(spec, field)) {
    auto shard = open_shard(path);
    const size_t n = shard->size();
    split.add({std::move(shard), 0, n});
  }
}

}  // namespace

void TokenDataset::Split::add(Span s) {
  before.push_back(total);
  total += s.count;
  spans.push_back(std::move(s));
}

TokenDataset TokenDataset::load(const DataConfig& data) {
  TokenDataset d;
  if (!data.train.empty()) {
    add_shards(data.train, "data.train", d.train_);
    add_shards(data.val, "data.val", d.val_);
    const DatasetManifest m = find_manifest(d.train_.spans.front().source->name());
    d.provenance_ = {m.dataset_id, data.train, data.val, m.path};
    d.vocab_size_ = 0;  // ids are checked against the model's vocabulary as they are read
    return d;
  }
  // A corpus is prepared like any dataset (prepare_data.h), once, into data.cache_dir: one
  // document, its last val_fraction of tokens the validation split.
  const CorpusSource src = resolve_corpus(data.corpus);
  const auto tokenizer = make_tokenizer(name_of(data.tokenizer), data.bpe_dir);
  PrepareOptions prepare;
  prepare.inputs = {data.corpus};
  prepare.out_dir = (fs::path(data.cache_dir) / cache_dir_name(data, src, *tokenizer)).string();
  prepare.tokenizer = name_of(data.tokenizer);
  prepare.bpe_dir = data.bpe_dir;
  prepare.shard_tokens = INT32_MAX;
  prepare.val_fraction = data.val_fraction;
  prepare.val_split = "tail";
  prepare.max_bytes = data.max_corpus_bytes;
  prepare.threads = 1;
  const PrepareResult prepared = prepare_data(prepare, nullptr);
  add_shards(prepare.out_dir + "/train_*.bin", "data.corpus", d.train_);
  add_shards(prepare.out_dir + "/val_*.bin", "data.corpus", d.val_);
  d.cache_path_ = prepare.out_dir;
  d.vocab_size_ = tokenizer->vocab_size();
  d.provenance_ = {prepared.dataset_id, data.corpus + " (" + name_of(data.tokenizer) + ")",
                   "last " + std::to_string(data.val_fraction) + " of the tokens",
                   prepared.manifest_path};
  return d;
}

TokenDataset TokenDataset::from_tokens(std::vector<uint16_t> tokens, double val_fraction,
                                       int vocab) {
  TokenDataset d;
  const size_t n = tokens.size(), split = size_t(double(n) * (1.0 - val_fraction));
  auto source = memory_tokens(std::move(tokens), "in-memory tokens");
  d.train_.add({source, 0, split});
  d.val_.add({source, split, n - split});
  d.vocab_size_ = vocab;
  return d;
}

TokenDataset TokenDataset::from_sources(std::vector<std::shared_ptr<const TokenSource>> train,
                                        std::vector<std::shared_ptr<const TokenSource>> val,
                                        int vocab) {
  TokenDataset d;
  for (auto& s : train) d.train_.add({s, 0, s->size()});
  for (auto& s : val) d.val_.add({s, 0, s->size()});
  d.vocab_size_ = vocab;
  return d;
}

void TokenDataset::check(int seq, int vocab_limit) {
  vocab_limit_ = vocab_limit;
  for (const Span& s : train_.spans)
    if (s.count < size_t(seq) + 1)
      throw std::runtime_error(s.source->name() + ": " + std::to_string(s.count) +
                               " training tokens, fewer than one window of " +
                               std::to_string(seq + 1) + " (model.seq_len + 1)");
  if (train_.spans.empty()) throw std::runtime_error("no training tokens");
  if (val_windows(seq) == 0)
    throw std::runtime_error("the validation split (" + std::to_string(val_tokens()) +
                             " tokens) is shorter than one window of " + std::to_string(seq + 1) +
                             " tokens");
}

void TokenDataset::copy_window(const Span& span, size_t start, int seq, int32_t* inputs,
                               int32_t* targets) const {
  thread_local std::vector<uint16_t> window;
  window.resize(size_t(seq) + 1);
  span.source->read(span.offset + start, window.size(), window.data());
  for (size_t t = 0; t < window.size(); ++t)
    if (vocab_limit_ > 0 && window[t] >= vocab_limit_)
      throw std::runtime_error(span.source->name() + ": token id " + std::to_string(window[t]) +
                               " at token " + std::to_string(span.offset + start + t) +
                               " is >= model.vocab_size (" + std::to_string(vocab_limit_) + ")");
  for (int t = 0; t < seq; ++t) {
    inputs[t] = window[size_t(t)];
    targets[t] = window[size_t(t) + 1];
  }
}

void TokenDataset::sample_train(uint64_t seed, int64_t step, int rank, int first_window, int batch,
                                int seq, int32_t* inputs, int32_t* targets) const {
  // Window starts: span i offers count_i - seq of them; start p of the whole split lies in the
  // last span whose first start (before_i - i·seq) is <= p.
  const size_t s = size_t(seq);
  const uint64_t positions = train_.total - train_.spans.size() * s;
  if (train_.spans.empty() || positions == 0)
    throw std::runtime_error("training split has " + std::to_string(train_.total) +
                             " tokens, fewer than one window of " + std::to_string(seq + 1));
  // Window j of a step starts at hash(seed, step, rank, j): the step's global batch is the same
  // however it is cut into micro-batches.
  const uint64_t step_seed = mix_seed(seed, uint64_t(step), uint64_t(rank));
  for (int b = 0; b < batch; ++b) {
    uint64_t state = step_seed ^ (uint64_t(first_window + b) * 0xD1B54A32D192ED03ull);
    const uint64_t p = splitmix64(state) % positions;
    size_t lo = 0, hi = train_.spans.size();  // invariant: first start of span lo <= p
    while (hi - lo > 1) {
      const size_t mid = (lo + hi) / 2;
      if (train_.before[mid] - mid * s <= p)
        lo = mid;
      else
        hi = mid;
    }
    copy_window(train_.spans[lo], size_t(p - (train_.before[lo] - lo * s)), seq,
                inputs + size_t(b) * s, targets + size_t(b) * s);
  }
}

size_t TokenDataset::val_windows(int seq) const {
  size_t n = 0;
  for (const Span& s : val_.spans) n += s.count > size_t(seq) ? (s.count - 1) / size_t(seq) : 0;
  return n;
}

void TokenDataset::val_batch(size_t first_window, int batch, int seq, int32_t* inputs,
                             int32_t* targets) const {
  for (int b = 0; b < batch; ++b) {
    size_t w = first_window + size_t(b);
    for (const Span& s : val_.spans) {
      const size_t here = s.count > size_t(seq) ? (s.count - 1) / size_t(seq) : 0;
      if (w < here) {
        copy_window(s, w * size_t(seq), seq, inputs + size_t(b) * seq, targets + size_t(b) * seq);
        break;
      }
      w -= here;
    }
  }
}

}  // namespace trainer_core
