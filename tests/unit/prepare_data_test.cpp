// `trainer prepare-data` on real files: documents and the val split, the end-of-text token,
// the manifest and its checksums, idempotence, interruption, and clear errors for bad input.
#include "trainer_core/data/prepare_data.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "scratch_dir.h"
#include "trainer_core/data/token_dataset.h"
#include "trainer_core/data/token_shards.h"
#include "trainer_core/data/tokenizer.h"
#include "trainer_core/util/sha256.h"

using namespace trainer_core;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

class PrepareTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = fresh_test_dir("prepare"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path(name)) << text;
    return path(name);
  }
  std::vector<uint16_t> all_tokens(const std::string& dir, const std::string& split) const {
    std::vector<uint16_t> out;
    for (const auto& p : expand_shard_spec(dir + "/" + split + "_*.bin", split)) {
      auto s = open_shard(p);
      const size_t at = out.size();
      out.resize(at + s->size());
      s->read(0, s->size(), out.data() + at);
    }
    return out;
  }
  fs::path dir_;
};

std::string documents_jsonl(int n) {
  std::string out;
  for (int i = 0; i < n; ++i)
    out +=
        json{{"text", "Document " + std::to_string(i) + " says hello."}, {"id", i}}.dump() + "\n";
  return out;
}

TEST_F(PrepareTest, JsonLinesBecomeGpt2ShardsWithEndOfTextAndAManifest) {
  PrepareOptions o;
  o.inputs = {write("docs.jsonl", documents_jsonl(400))};
  o.out_dir = path("out");
  o.val_fraction = 0.1;
  o.shard_tokens = 1000;
  const PrepareResult r = prepare_data(o, nullptr);
  EXPECT_FALSE(r.up_to_date);
  EXPECT_EQ(r.documents, 400);
  const auto train = all_tokens(o.out_dir, "train"), val = all_tokens(o.out_dir, "val");
  EXPECT_EQ(int64_t(train.size()), r.train_tokens);
  EXPECT_EQ(int64_t(val.size()), r.val_tokens);
  // Every document starts with <|endoftext|>; whole documents go to one split.
  const auto gpt2 = make_tokenizer("gpt2", "");
  const size_t per_doc = 1 + gpt2->encode("Document 100 says hello.").size();
  const size_t eot = size_t(std::count(train.begin(), train.end(), 50256) +
                            std::count(val.begin(), val.end(), 50256));
  EXPECT_EQ(eot, 400u);
  EXPECT_EQ(train.front(), 50256);
  EXPECT_GT(val.size(), 10 * per_doc);  // about 40 documents
  EXPECT_LT(val.size(), 80 * per_doc);
  const std::vector<int32_t> first(train.begin() + 1, train.begin() + std::ptrdiff_t(per_doc));
  EXPECT_EQ(gpt2->decode(first), "Document 0 says hello.");
  // The manifest: shards with counts and checksums, the dataset id, inputs and options.
  const json m = json::parse(std::ifstream(r.manifest_path));
  EXPECT_EQ(m["dataset_id"], r.dataset_id);
  EXPECT_EQ(m["tokenizer"]["name"], "gpt2");
  EXPECT_EQ(m["tokenizer"]["vocab_size"], 50257);
  ASSERT_GE(m["shards"].size(), 3u);  // 1,000-token shards
  for (const auto& s : m["shards"]) {
    EXPECT_EQ(s["sha256"], sha256_file(o.out_dir + "/" + s["name"].get<std::string>()));
    EXPECT_LE(s["tokens"].get<int64_t>(), 1000);
  }
  // A run's provenance comes from this manifest.
  DataConfig d;
  d.train = o.out_dir;  // a directory: all of its *.bin... so name the splits by glob instead
  d.train = o.out_dir + "/train_*.bin";
  d.val = o.out_dir + "/val_*.bin";
  const TokenDataset ds = TokenDataset::load(d);
  EXPECT_EQ(ds.provenance().id, r.dataset_id);
  EXPECT_EQ(int64_t(ds.train_tokens()), r.train_tokens);
}

TEST_F(PrepareTest, SameInputsAgainDoNothingAndAnInterruptedRunIsRedone) {
  PrepareOptions o;
  o.inputs = {write("a.txt", "First paragraph.\n\nSecond one,\nwith two lines.\n\n\nThird.\n")};
  o.out_dir = path("out");
  o.tokenizer = "byte";
  o.text_documents = "paragraphs";
  o.val_fraction = 0.4;
  const PrepareResult first = prepare_data(o, nullptr);
  EXPECT_EQ(first.documents, 3);
  const auto written = fs::last_write_time(o.out_dir + "/train_000000.bin");
  const PrepareResult again = prepare_data(o, nullptr);
  EXPECT_TRUE(again.up_to_date);
  EXPECT_EQ(again.dataset_id, first.dataset_id);
  EXPECT_EQ(fs::last_write_time(o.out_dir + "/train_000000.bin"), written);
  // Byte tokens: documents joined by a blank line, the text otherwise unchanged.
  const auto train = all_tokens(o.out_dir, "train"), val = all_tokens(o.out_dir, "val");
  EXPECT_EQ(train.size() + val.size(),
            std::string("First paragraph.\n\nSecond one,\nwith two lines.\n\nThird.").size());
  // Interrupted after a shard but before the manifest: a stray temporary and no manifest.
  fs::remove(first.manifest_path);
  std::ofstream(o.out_dir + "/train_000001.bin.tmp.999") << "partial";
  const PrepareResult redone = prepare_data(o, nullptr);
  EXPECT_FALSE(redone.up_to_date);
  EXPECT_EQ(redone.dataset_id, first.dataset_id);
  EXPECT_EQ(expand_shard_spec(o.out_dir, "data.train").size(), 2u)
      << "the temporary is not a shard";
  // Other options make another dataset.
  o.val_fraction = 0.5;
  EXPECT_FALSE(prepare_data(o, nullptr).up_to_date);
}

TEST_F(PrepareTest, GzipInputsAndThreadCountsGiveTheSameShards) {
  std::string text;
  for (int i = 0; i < 300; ++i)
    text += "Entry " + std::to_string(i) + ": a word, and another; 42 numbers.\n\n";
  const std::string gz = path("corpus.txt.gz");
  gzFile f = gzopen(gz.c_str(), "wb");
  gzwrite(f, text.data(), unsigned(text.size()));
  gzclose(f);
  PrepareOptions o;
  o.inputs = {gz};
  o.text_documents = "paragraphs";
  o.val_fraction = 0.05;
  o.out_dir = path("one");
  o.threads = 1;
  const PrepareResult one = prepare_data(o, nullptr);
  o.out_dir = path("four");
  o.threads = 4;
  const PrepareResult four = prepare_data(o, nullptr);
  EXPECT_EQ(one.dataset_id, four.dataset_id);
  EXPECT_EQ(one.documents, 300);
}

TEST_F(PrepareTest, BadInputIsAClearErrorWithItsPlace) {
  PrepareOptions o;
  o.out_dir = path("out");
  auto error_of = [&]() -> std::string {
    try {
      prepare_data(o, nullptr);
    } catch (const std::exception& e) {
      return e.what();
    }
    return "";
  };
  o.inputs = {write("bad.jsonl", documents_jsonl(3) + "{not json\n")};
  EXPECT_NE(error_of().find("bad.jsonl:4: not a JSON object"), std::string::npos) << error_of();
  o.inputs = {write("notext.jsonl", "{\"body\": \"x\"}\n")};
  EXPECT_NE(error_of().find("notext.jsonl:1: the record has no string field \"text\""),
            std::string::npos)
      << error_of();
  o.inputs = {write("one.txt", "just one document\n")};
  EXPECT_NE(error_of().find("both splits need one"), std::string::npos) << error_of();
  o.inputs = {path("missing.txt")};
  EXPECT_NE(error_of().find("missing.txt"), std::string::npos);
  EXPECT_FALSE(fs::exists(path("out/manifest.json")));
}

}  // namespace
