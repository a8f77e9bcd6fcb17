// Token shards on real files: the format, every error a researcher can hit with a path, window
// sampling over several shards, the corpus path's equivalence, and the data path's memory bound.
#include "trainer_core/data/token_shards.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <numeric>

#include "trainer_core/data/token_dataset.h"

using namespace trainer_core;
namespace fs = std::filesystem;

namespace {

class ShardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("shards_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string shard(const std::string& name, const std::vector<uint16_t>& tokens) const {
    write_shard(path(name), tokens.data(), tokens.size());
    return path(name);
  }
  static std::string error_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const std::exception& e) {
      return e.what();
    }
    return "";
  }
  fs::path dir_;
};

std::vector<uint16_t> iota_tokens(size_t n, uint16_t first) {
  std::vector<uint16_t> t(n);
  std::iota(t.begin(), t.end(), first);
  return t;
}

TEST_F(ShardTest, TheFormatIsLlmCs) {
  const std::string p = shard("a.bin", {7, 8, 9});
  std::ifstream in(p, std::ios::binary);
  int32_t header[256];
  in.read(reinterpret_cast<char*>(header), sizeof header);
  EXPECT_EQ(header[0], 20240520);
  EXPECT_EQ(header[1], 1);
  EXPECT_EQ(header[2], 3);
  uint16_t body[3];
  in.read(reinterpret_cast<char*>(body), sizeof body);
  EXPECT_EQ(body[2], 9);
  EXPECT_EQ(fs::file_size(p), 1024u + 6u);
  auto s = open_shard(p);
  ASSERT_EQ(s->size(), 3u);
  uint16_t out[2];
  s->read(1, 2, out);
  EXPECT_EQ(out[0], 8);
  EXPECT_EQ(out[1], 9);
  EXPECT_TRUE(fs::directory_iterator(dir_) != fs::directory_iterator());
  for (const auto& e : fs::directory_iterator(dir_))
    EXPECT_EQ(e.path().filename(), "a.bin") << "no temporary left";
}

TEST_F(ShardTest, EveryBadShardIsAClearErrorWithItsPath) {
  EXPECT_NE(error_of([&] {
              open_shard(path("missing.bin"));
            }).find(path("missing.bin") + ": cannot open"),
            std::string::npos);
  { std::ofstream(path("text.bin")) << std::string(2000, 'x'); }
  EXPECT_NE(error_of([&] { open_shard(path("text.bin")); }).find("not a token shard: magic"),
            std::string::npos);
  const std::string v = shard("v2.bin", {1, 2, 3});
  {
    std::fstream f(v, std::ios::in | std::ios::out | std::ios::binary);
    const int32_t two = 2;
    f.seekp(4);
    f.write(reinterpret_cast<const char*>(&two), 4);
  }
  EXPECT_NE(error_of([&] { open_shard(v); }).find("version 2, expected 1"), std::string::npos);
  const std::string t = shard("short.bin", iota_tokens(100, 0));
  fs::resize_file(t, 1024 + 50);
  const std::string truncated = error_of([&] { open_shard(t); });
  EXPECT_NE(truncated.find(t + ": truncated: the header says 100 tokens"), std::string::npos)
      << truncated;
  EXPECT_NE(error_of([&] {
              expand_shard_spec(path("none_*.bin"), "data.train");
            }).find("data.train: no token shard matches"),
            std::string::npos);
  fs::create_directories(path("empty"));
  EXPECT_NE(
      error_of([&] { expand_shard_spec(path("empty"), "data.val"); }).find("data.val: directory"),
      std::string::npos);
  EXPECT_NE(error_of([&] {
              expand_shard_spec(path("nope.bin"), "data.train");
            }).find("no such token shard"),
            std::string::npos);
}

TEST_F(ShardTest, ShortShardsAndOutOfVocabularyIdsAreNamed) {
  DataConfig d;
  d.train = shard("train_tiny.bin", iota_tokens(10, 0));
  d.val = shard("val.bin", iota_tokens(100, 0));
  TokenDataset tiny = TokenDataset::load(d);
  const std::string short_error = error_of([&] { tiny.check(16, 256); });
  EXPECT_NE(short_error.find("train_tiny.bin: 10 training tokens, fewer than one window of 17"),
            std::string::npos)
      << short_error;
  d.train = shard("train_big_ids.bin", iota_tokens(200, 200));  // ids 200..399
  TokenDataset big = TokenDataset::load(d);
  big.check(16, 256);
  std::vector<int32_t> in(16 * 8), tg(16 * 8);
  const std::string vocab_error = error_of([&] {
    for (int step = 0; step < 50; ++step)
      big.sample_train(1, step, 0, 0, 8, 16, in.data(), tg.data());
  });
  EXPECT_NE(vocab_error.find("train_big_ids.bin: token id"), std::string::npos) << vocab_error;
  EXPECT_NE(vocab_error.find("is >= model.vocab_size (256)"), std::string::npos) << vocab_error;
}

// Windows are drawn over every shard, never across a boundary, in proportion to their sizes, and
// the draw is the same however a batch is cut into micro-batches.
TEST_F(ShardTest, WindowsComeFromEveryShardAndNeverCrossOne) {
  DataConfig d;
  shard("train_000.bin", iota_tokens(300, 0));     // ids 0..299
  shard("train_001.bin", iota_tokens(900, 1000));  // ids 1000..1899
  d.train = path("train_*.bin");
  d.val = shard("val.bin", iota_tokens(100, 5000));
  TokenDataset ds = TokenDataset::load(d);
  ds.check(32, 65536);
  EXPECT_EQ(ds.train_tokens(), 1200u);
  int first = 0, second = 0;
  std::vector<int32_t> in(32 * 64), tg(32 * 64), in2(32 * 64), tg2(32 * 64);
  for (int step = 0; step < 20; ++step) {
    ds.sample_train(3, step, 0, 0, 64, 32, in.data(), tg.data());
    for (int b = 0; b < 64; ++b) {
      const int32_t* w = in.data() + b * 32;
      EXPECT_EQ(tg[size_t(b) * 32 + 31], w[31] + 1) << "a window is contiguous tokens of one shard";
      (w[0] < 1000 ? first : second)++;
    }
    ds.sample_train(3, step, 0, 32, 32, 32, in2.data(), tg2.data());
    EXPECT_TRUE(std::equal(in2.begin(), in2.begin() + 32 * 32, in.begin() + 32 * 32));
  }
  // Starts: 268 in the first shard, 868 in the second.
  EXPECT_NEAR(double(first) / (first + second), 268.0 / (268 + 868), 0.05);
  // Validation windows are the disjoint windows of the val shard, in order.
  EXPECT_EQ(ds.val_windows(32), 3u);
  ds.val_batch(1, 1, 32, in.data(), tg.data());
  EXPECT_EQ(in[0], 5032);
}

// A corpus (data.corpus) is prepared into shards like any dataset: its batches and eval windows
// are those of the shard files themselves.
TEST_F(ShardTest, TheCorpusPathReadsShardsItPrepared) {
  DataConfig corpus;
  corpus.corpus = "gcide";
  corpus.cache_dir = path("cache");
  corpus.max_corpus_bytes = 200000;
  const TokenDataset a = TokenDataset::load(corpus);
  EXPECT_EQ(a.train_tokens() + a.val_tokens(), 200000u);  // bytes: one token each
  EXPECT_EQ(a.val_tokens(), 200000u - size_t(200000 * (1 - corpus.val_fraction)));
  DataConfig shards;
  shards.train = a.cache_path() + "/train_*.bin";
  shards.val = a.cache_path() + "/val_*.bin";
  const TokenDataset b = TokenDataset::load(shards);
  ASSERT_EQ(b.train_tokens(), a.train_tokens());
  EXPECT_EQ(b.provenance().id, a.provenance().id);
  std::vector<int32_t> in1(64 * 8), tg1(64 * 8), in2(64 * 8), tg2(64 * 8);
  for (int step = 0; step < 10; ++step) {
    a.sample_train(11, step, 0, 0, 8, 64, in1.data(), tg1.data());
    b.sample_train(11, step, 0, 0, 8, 64, in2.data(), tg2.data());
    ASSERT_EQ(in1, in2);
    ASSERT_EQ(tg1, tg2);
  }
  ASSERT_EQ(a.val_windows(64), b.val_windows(64));
  a.val_batch(0, 8, 64, in1.data(), tg1.data());
  b.val_batch(0, 8, 64, in2.data(), tg2.data());
  EXPECT_EQ(in1, in2);
}

long rss_kib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

long vm_size_kib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmSize:", 0) == 0) return std::stol(line.substr(7));
  return -1;
}

// A corpus larger than the process may address: a child limited (RLIMIT_AS, as `ulimit -v`) to
// its current size + 256 MiB reads 20,000 windows from 2 GiB of shards. Loading or mapping them
// would fail; reading by position keeps its resident memory within 16 MiB of where it started.
TEST_F(ShardTest, ShardsLargerThanTheAddressSpaceLimitAreReadInBoundedMemory) {
  constexpr size_t kTokensPerShard = (size_t(1) << 29) - 1;  // 1 GiB each, sparse on disk
  for (const char* name : {"big_000.bin", "big_001.bin"}) {
    shard(name, {1, 2, 3});
    std::fstream f(path(name), std::ios::in | std::ios::out | std::ios::binary);
    const int32_t count = int32_t(kTokensPerShard);
    f.seekp(8);
    f.write(reinterpret_cast<const char*>(&count), 4);
    f.close();
    fs::resize_file(path(name), 1024 + kTokensPerShard * 2);
  }
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const rlim_t limit = rlim_t(vm_size_kib() + 256 * 1024) * 1024;
    const rlimit as{limit, limit};
    if (::setrlimit(RLIMIT_AS, &as) != 0) ::_exit(10);
    try {
      DataConfig d;
      d.train = path("big_*.bin");
      d.val = path("big_001.bin");
      TokenDataset ds = TokenDataset::load(d);
      ds.check(512, 65536);
      std::vector<int32_t> in(512 * 8), tg(512 * 8);
      ds.sample_train(1, 0, 0, 0, 8, 512, in.data(), tg.data());  // warm up the buffers
      const long before = rss_kib();
      for (int step = 0; step < 2500; ++step)
        ds.sample_train(1, step, 0, 0, 8, 512, in.data(), tg.data());
      for (int w = 0; w < 100; ++w) ds.val_batch(size_t(w) * 8, 8, 512, in.data(), tg.data());
      const long grown = rss_kib() - before;
      std::printf(
          "data path: 20,000 windows of 513 tokens from 2 GiB of shards under a %lu MiB "
          "address-space "
          "limit; resident memory grew %ld KiB\n",
          (unsigned long)(limit >> 20), grown);
      std::fflush(stdout);
      ::_exit(grown < 16 * 1024 ? 0 : 11);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child: %s\n", e.what());
      ::_exit(12);
    }
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "10: setrlimit failed, 11: resident memory grew too much, 12: read failed";
  // And a whole load would not fit: 2 GiB of tokens is beyond the limit the child had.
}

}  // namespace
