// The data path's speed:
//   1. GPT-2 BPE tokenizer throughput on GCIDE text: MB/s on one thread and on every core
//      (anchor: tiktoken's published single-thread GPT-2 rate is a few MB/s);
//   2. batch assembly from token shards on disk: windows/s and tokens/s with a cold page cache
//      (the shard's pages dropped with posix_fadvise) and a warm one. Target: >= 10M tokens/s, ten
//      times what the L preset needs on one H100 at 45% MFU.
//   build/bench/data_bench [--quick]
// Prints figures only; it never fails on a time.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include "bench_clock.h"
#include "trainer_core/data/corpus.h"
#include "trainer_core/data/token_dataset.h"
#include "trainer_core/data/token_shards.h"
#include "trainer_core/data/tokenizer.h"
#include "trainer_core/util/rng.h"

using namespace trainer_core;

namespace {

void tokenizer_throughput(size_t bytes) {
  const std::string text = read_corpus(resolve_corpus("gcide"), int64_t(bytes));
  const auto gpt2 = make_tokenizer("gpt2", "");
  auto t0 = Clock::now();
  const size_t tokens = gpt2->encode(text).size();
  const double one = seconds_since(t0);
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  // Every core: the text cut into one piece per thread at paragraph breaks.
  std::vector<std::string> pieces;
  for (size_t start = 0, i = 0; i < threads; ++i) {
    size_t end =
        i + 1 == threads ? text.size() : text.find("\n\n", text.size() * (i + 1) / threads);
    if (end == std::string::npos) end = text.size();
    pieces.push_back(text.substr(start, end - start));
    start = end;
  }
  t0 = Clock::now();
  std::vector<std::thread> pool;
  for (const auto& piece : pieces)
    pool.emplace_back([&gpt2, &piece] { (void)gpt2->encode(piece); });
  for (auto& t : pool) t.join();
  const double all = seconds_since(t0);
  const double mb = double(text.size()) / 1e6;
  std::printf(
      "tokenizer  GPT-2 BPE on %.1f MB of GCIDE (%zu tokens): %.2f MB/s on 1 thread, %.2f MB/s on "
      "%u threads\n",
      mb, tokens, mb / one, mb / all, threads);
}

void loader_throughput(size_t shard_tokens, int steps) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("data_bench_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::vector<uint16_t> tokens(shard_tokens);
  UniformRng rng(7);
  for (auto& t : tokens) t = uint16_t(rng.below(50257));
  const std::string train = (dir / "train_000000.bin").string(),
                    val = (dir / "val_000000.bin").string();
  write_shard(train, tokens.data(), tokens.size());
  write_shard(val, tokens.data(), 1 << 16);
  DataConfig d;
  d.train = train;
  d.val = val;
  TokenDataset ds = TokenDataset::load(d);
  constexpr int kSeq = 1024, kWindows = 64;
  ds.check(kSeq, 50257);
  std::vector<int32_t> in(size_t(kSeq) * kWindows), tg(in.size());
  for (const char* cache : {"cold", "warm"}) {
    if (std::strcmp(cache, "cold") == 0) {
      const int fd = ::open(train.c_str(), O_RDONLY);
      ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
      ::close(fd);
    }
    const auto t0 = Clock::now();
    for (int step = 0; step < steps; ++step)
      ds.sample_train(1, step, 0, 0, kWindows, kSeq, in.data(), tg.data());
    const double s = seconds_since(t0);
    const double windows = double(steps) * kWindows;
    std::printf(
        "loader     %s page cache, %.0f MB shard, windows of %d tokens: %.0f windows/s, %.1fM "
        "tokens/s\n",
        cache, double(shard_tokens) * 2 / 1e6, kSeq + 1, windows / s, windows * kSeq / s / 1e6);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  tokenizer_throughput(quick ? (1 << 20) : (16 << 20));
  loader_throughput(quick ? (size_t(1) << 22) : (size_t(1) << 27), quick ? 20 : 400);
  return 0;
}
