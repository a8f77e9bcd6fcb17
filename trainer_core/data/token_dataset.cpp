#include "trainer_core/data/token_dataset.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <unistd.h>

#include "trainer_core/data/corpus.h"
#include "trainer_core/data/tokenizer.h"
#include "trainer_core/util/rng.h"

namespace trainer_core {

namespace fs = std::filesystem;

namespace {

constexpr char kMagic[8] = {'T', 'O', 'K', 'C', 'A', 'C', 'H', '1'};

struct CacheHeader {
  char magic[8];
  uint32_t vocab_size;
  uint32_t reserved;
  uint64_t count;
};

// The cache key covers everything that changes the token stream.
std::string cache_file_name(const DataConfig& data, const CorpusSource& src) {
  const auto size = fs::file_size(src.path);
  const auto mtime = fs::last_write_time(src.path).time_since_epoch().count();
  const std::string key = src.path + "|" + std::to_string(size) + "|" + std::to_string(mtime) + "|" +
                          data.tokenizer + "|" + std::to_string(data.max_corpus_bytes);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", (unsigned long long)std::hash<std::string>{}(key));
  return fs::path(src.path).filename().string() + "." + data.tokenizer + "." + hex + ".tokens";
}

bool read_cache(const std::string& path, std::vector<uint16_t>& tokens, int& vocab) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  CacheHeader h{};
  if (!in.read(reinterpret_cast<char*>(&h), sizeof h) || std::memcmp(h.magic, kMagic, 8) != 0)
    return false;
  tokens.resize(h.count);
  if (!in.read(reinterpret_cast<char*>(tokens.data()), std::streamsize(h.count * 2))) return false;
  vocab = int(h.vocab_size);
  return true;
}

// Written to a temporary file and renamed: concurrent runs never see a partial cache.
void write_cache(const std::string& path, const std::vector<uint16_t>& tokens, int vocab) {
  fs::create_directories(fs::path(path).parent_path());
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary);
    CacheHeader h{};
    std::memcpy(h.magic, kMagic, 8);
    h.vocab_size = uint32_t(vocab);
    h.count = tokens.size();
    out.write(reinterpret_cast<const char*>(&h), sizeof h);
    out.write(reinterpret_cast<const char*>(tokens.data()), std::streamsize(tokens.size() * 2));
    if (!out) throw std::runtime_error("token cache: cannot write " + tmp + " (disk full?)");
  }
  fs::rename(tmp, path);
}

}  // namespace

TokenDataset TokenDataset::load(const DataConfig& data) {
  const CorpusSource src = resolve_corpus(data.corpus);
  const std::string path = (fs::path(data.cache_dir) / cache_file_name(data, src)).string();
  std::vector<uint16_t> tokens;
  int vocab = 0;
  if (!read_cache(path, tokens, vocab)) {
    auto tokenizer = make_tokenizer(data.tokenizer, data.bpe_dir);
    const std::vector<int32_t> ids = tokenizer->encode(read_corpus(src, data.max_corpus_bytes));
    tokens.assign(ids.begin(), ids.end());
    vocab = tokenizer->vocab_size();
    write_cache(path, tokens, vocab);
  }
  TokenDataset d = from_tokens(std::move(tokens), data.val_fraction, vocab);
  d.cache_path_ = path;
  return d;
}

TokenDataset TokenDataset::from_tokens(std::vector<uint16_t> tokens, double val_fraction, int vocab) {
  TokenDataset d;
  d.split_ = size_t(double(tokens.size()) * (1.0 - val_fraction));
  d.tokens_ = std::move(tokens);
  d.vocab_size_ = vocab;
  return d;
}

void TokenDataset::copy_window(size_t start, int seq, int32_t* inputs, int32_t* targets) const {
  for (int t = 0; t < seq; ++t) {
    inputs[t] = tokens_[start + t];
    targets[t] = tokens_[start + t + 1];
  }
}

void TokenDataset::sample_train(uint64_t seed, int64_t step, int rank, int first_window, int batch,
                                int seq, int32_t* inputs, int32_t* targets) const {
  if (split_ < size_t(seq) + 2)
    throw std::runtime_error("training split has " + std::to_string(split_) +
                             " tokens, fewer than one window of " + std::to_string(seq + 1));
  // Window j of a step starts at hash(seed, step, rank, j): the step's global batch is the same
  // however it is cut into micro-batches.
  const uint64_t positions = split_ - size_t(seq);
  const uint64_t step_seed = mix_seed(seed, uint64_t(step), uint64_t(rank));
  for (int b = 0; b < batch; ++b) {
    uint64_t state = step_seed ^ (uint64_t(first_window + b) * 0xD1B54A32D192ED03ull);
    copy_window(size_t(splitmix64(state) % positions), seq, inputs + size_t(b) * seq,
                targets + size_t(b) * seq);
  }
}

size_t TokenDataset::val_windows(int seq) const {
  const size_t n = val_tokens();
  return n > size_t(seq) ? (n - 1) / size_t(seq) : 0;
}

void TokenDataset::val_batch(size_t first_window, int batch, int seq, int32_t* inputs,
                             int32_t* targets) const {
  for (int b = 0; b < batch; ++b)
    copy_window(split_ + (first_window + size_t(b)) * size_t(seq), seq, inputs + size_t(b) * seq,
                targets + size_t(b) * seq);
}

}  // namespace trainer_core
