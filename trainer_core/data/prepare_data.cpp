#include "trainer_core/data/prepare_data.h"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <thread>

#include "trainer_core/data/corpus.h"
#include "trainer_core/data/token_shards.h"
#include "trainer_core/data/tokenizer.h"
#include "trainer_core/util/rng.h"
#include "trainer_core/util/sha256.h"

namespace trainer_core {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int32_t kGpt2EndOfText = 50256;
constexpr size_t kBatchBytes = 8 << 20;          // text tokenized per parallel batch
constexpr size_t kLongDocumentBytes = 64 << 20;  // longer text documents are cut at a line end

// Reads documents from the inputs in order, a batch at a time.
class DocumentReader {
 public:
  DocumentReader(std::vector<CorpusSource> inputs, std::string text_documents, int64_t max_bytes)
      : inputs_(std::move(inputs)),
        paragraphs_(text_documents == "paragraphs"),
        max_bytes_(max_bytes) {
    for (const auto& in : inputs_) total_bytes_ += fs::file_size(in.path);
  }
  ~DocumentReader() {
    if (file_) gzclose(file_);
  }
  uint64_t total_bytes() const { return total_bytes_; }
  uint64_t bytes_read() const { return done_bytes_ + (file_ ? uint64_t(gzoffset(file_)) : 0); }

  // Appends documents until about kBatchBytes of text; false when every input is read.
  bool next_batch(std::vector<std::string>& docs) {
    size_t bytes = 0;
    while (bytes < kBatchBytes) {
      if (max_bytes_ > 0 && text_bytes_ >= uint64_t(max_bytes_)) return false;
      if (!file_ && !open_next()) return false;
      std::string doc;
      if (!next_document(doc)) {
        done_bytes_ += fs::file_size(inputs_[current_].path);
        gzclose(file_);
        file_ = nullptr;
        continue;
      }
      if (max_bytes_ > 0 && text_bytes_ + doc.size() > uint64_t(max_bytes_))
        doc.resize(size_t(uint64_t(max_bytes_) - text_bytes_));
      text_bytes_ += doc.size();
      bytes += doc.size();
      docs.push_back(std::move(doc));
    }
    return true;
  }

 private:
  bool open_next() {
    if (next_ >= inputs_.size()) return false;
    current_ = next_++;
    file_ = gzopen(inputs_[current_].path.c_str(), "rb");
    if (!file_)
      throw std::runtime_error(inputs_[current_].name + ": cannot open " + inputs_[current_].path);
    gzbuffer(file_, 1 << 20);
    jsonl_ =
        inputs_[current_].path.ends_with(".jsonl") || inputs_[current_].path.ends_with(".jsonl.gz");
    line_ = 0;
    return true;
  }

  bool read_line(std::string& line) {
    line.clear();
    char buf[1 << 16];
    while (gzgets(file_, buf, sizeof buf)) {
      line += buf;
      if (!line.empty() && line.back() == '\n') break;
    }
    int code = 0;
    const char* message = gzerror(file_, &code);
    if (code < 0) throw std::runtime_error(inputs_[current_].name + ": read error: " + message);
    if (line.empty()) return false;
    ++line_;
    return true;
  }

  bool next_document(std::string& doc) {
    std::string line;
    if (jsonl_) {
      while (read_line(line)) {
        if (line.find_first_not_of(" \t\r\n") == std::string::npos) continue;
        const json record = json::parse(line, nullptr, false);
        const std::string where = inputs_[current_].name + ":" + std::to_string(line_);
        if (record.is_discarded()) throw std::runtime_error(where + ": not a JSON object");
        if (!record.is_object() || !record.contains("text") || !record["text"].is_string())
          throw std::runtime_error(where + ": the record has no string field \"text\"");
        doc = record["text"].get<std::string>();
        return true;
      }
      return false;
    }
    // Text: a paragraph block without its final line break, or the file (cut at a line end past
    // kLongDocumentBytes).
    bool any = false;
    while (read_line(line)) {
      const bool blank = line.find_first_not_of(" \t\r\n") == std::string::npos;
      if (paragraphs_ && blank) {
        if (any) break;
        continue;
      }
      doc += line;
      any = true;
      if (doc.size() >= kLongDocumentBytes) return true;
    }
    while (paragraphs_ && !doc.empty() && (doc.back() == '\n' || doc.back() == '\r'))
      doc.pop_back();
    return any;
  }

  std::vector<CorpusSource> inputs_;
  bool paragraphs_;
  int64_t max_bytes_;
  uint64_t total_bytes_ = 0, done_bytes_ = 0, text_bytes_ = 0;
  gzFile file_ = nullptr;
  size_t next_ = 0, current_ = 0;
  bool jsonl_ = false;
  int64_t line_ = 0;
};

// Whole documents go to validation by a hash of their index: spread over the corpus, fixed.
bool is_validation(uint64_t document, double val_fraction) {
  uint64_t state = document ^ 0x5EEDDA7A5EEDDA7Aull;
  return double(splitmix64(state) >> 11) * 0x1.0p-53 < val_fraction;
}

// Accumulates one split's tokens and writes full shards as it goes.
class ShardWriter {
 public:
  ShardWriter(std::string dir, std::string split, int64_t shard_tokens)
      : dir_(std::move(dir)), split_(std::move(split)), shard_tokens_(size_t(shard_tokens)) {}
  void add(const std::vector<uint16_t>& tokens) {
    for (size_t pos = 0; pos < tokens.size();) {
      const size_t take = std::min(tokens.size() - pos, shard_tokens_ - buffer_.size());
      buffer_.insert(buffer_.end(), tokens.begin() + std::ptrdiff_t(pos),
                     tokens.begin() + std::ptrdiff_t(pos + take));
      pos += take;
      if (buffer_.size() == shard_tokens_) flush();
    }
  }
  void finish() {
    if (!buffer_.empty() || shards_.empty()) flush();
  }
  int64_t tokens() const { return total_; }
  const json& shards() const { return shards_; }

 private:
  void flush() {
    char name[64];
    std::snprintf(name, sizeof name, "%s_%06zu.bin", split_.c_str(), shards_.size());
    const std::string path = (fs::path(dir_) / name).string();
    write_shard(path, buffer_.data(), buffer_.size());
    shards_.push_back({{"name", name},
                       {"split", split_},
                       {"tokens", buffer_.size()},
                       {"sha256", sha256_file(path)}});
    total_ += int64_t(buffer_.size());
    buffer_.clear();
  }
  std::string dir_, split_;
  size_t shard_tokens_;
  std::vector<uint16_t> buffer_;
  json shards_ = json::array();
  int64_t total_ = 0;
};

json tokenizer_identity(const PrepareOptions& o, const Tokenizer& t) {
  json id = {{"name", t.name()}, {"implementation", t.identity()}, {"vocab_size", t.vocab_size()}};
  if (o.tokenizer == "gpt2") {
    const std::string dir = o.bpe_dir.empty() ? default_bpe_dir() : o.bpe_dir;
    id["encoder_json_sha256"] = sha256_file(dir + "/encoder.json");
    id["vocab_bpe_sha256"] = sha256_file(dir + "/vocab.bpe");
  }
  return id;
}

json input_identity(const CorpusSource& in) {
  return {{"input", in.name},
          {"path", in.path},
          {"bytes", fs::file_size(in.path)},
          {"mtime", fs::last_write_time(in.path).time_since_epoch().count()}};
}

// The manifest in `manifest_path` when it was made from these inputs, options and tokenizer and
// its shards are all there; nullopt otherwise (absent, unreadable or stale).
std::optional<json> current_manifest(const fs::path& manifest_path, const json& inputs,
                                     const json& options, const json& tokenizer) {
  std::ifstream in(manifest_path);
  if (!in) return std::nullopt;
  json m = json::parse(in, nullptr, false);
  if (!m.is_object() || m.value("inputs", json()) != inputs ||
      m.value("options", json()) != options || m.value("tokenizer", json()) != tokenizer)
    return std::nullopt;
  for (const auto& shard : m.value("shards", json::array())) {
    const fs::path p = manifest_path.parent_path() / shard.value("name", "");
    std::error_code ec;
    if (fs::file_size(p, ec) != kShardHeaderBytes + shard.value("tokens", uint64_t(0)) * 2 || ec)
      return std::nullopt;
  }
  return m;
}

}  // namespace

PrepareResult prepare_data(const PrepareOptions& o,
                           const std::function<void(const PrepareProgress&)>& progress) {
  if (o.inputs.empty()) throw std::runtime_error("prepare-data: no inputs");
  if (o.out_dir.empty()) throw std::runtime_error("prepare-data: --out is required");
  if (o.shard_tokens < 1 || o.shard_tokens > INT32_MAX)
    throw std::runtime_error("prepare-data: --shard-tokens must be in [1, 2^31 - 1]");
  if (!(o.val_fraction > 0 && o.val_fraction < 1))
    throw std::runtime_error("prepare-data: --val-fraction must be in (0, 1)");
  if (o.text_documents != "file" && o.text_documents != "paragraphs")
    throw std::runtime_error("prepare-data: --text-documents must be file or paragraphs");
  if (o.val_split != "documents" && o.val_split != "tail")
    throw std::runtime_error("prepare-data: --val-split must be documents or tail");
  if (o.max_bytes < 0) throw std::runtime_error("prepare-data: --max-bytes must be >= 0");
  const auto tokenizer = make_tokenizer(o.tokenizer, o.bpe_dir);
  if (tokenizer->vocab_size() > 65536)
    throw std::runtime_error("prepare-data: tokenizer " + o.tokenizer + " has " +
                             std::to_string(tokenizer->vocab_size()) +
                             " tokens; shards hold 16-bit ids (at most 65,536)");

  std::vector<CorpusSource> sources;
  json inputs = json::array();
  for (const std::string& in : o.inputs) {
    sources.push_back(resolve_corpus(in));
    inputs.push_back(input_identity(sources.back()));
  }
  const json options = {{"shard_tokens", o.shard_tokens},
                        {"val_fraction", o.val_fraction},
                        {"text_documents", o.text_documents},
                        {"val_split", o.val_split},
                        {"max_bytes", o.max_bytes}};
  const json tokenizer_id = tokenizer_identity(o, *tokenizer);
  const fs::path manifest_path = fs::path(o.out_dir) / "manifest.json";
  PrepareResult result;
  result.manifest_path = manifest_path.string();
  if (const auto current = current_manifest(manifest_path, inputs, options, tokenizer_id)) {
    const json& m = *current;
    result.up_to_date = true;
    result.dataset_id = m.value("dataset_id", "");
    result.train_tokens = m["tokens"].value("train", int64_t(0));
    result.val_tokens = m["tokens"].value("val", int64_t(0));
    result.documents =
        m["documents"].value("train", int64_t(0)) + m["documents"].value("val", int64_t(0));
    result.shards = int(m["shards"].size());
    return result;
  }
  fs::create_directories(o.out_dir);
  fs::remove(manifest_path);  // the old manifest no longer describes what is being written

  DocumentReader reader(sources, o.text_documents, o.max_bytes);
  const bool tail = o.val_split == "tail";
  std::vector<uint16_t> all;  // tail split: every token, cut at the end
  ShardWriter train(o.out_dir, "train", o.shard_tokens), val(o.out_dir, "val", o.shard_tokens);
  const int threads =
      o.threads > 0 ? o.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  const auto start = std::chrono::steady_clock::now();
  PrepareProgress p;
  p.bytes_total = reader.total_bytes();
  int64_t documents[2] = {0, 0};
  uint64_t next_document = 0;
  std::vector<std::string> docs;
  std::vector<std::vector<uint16_t>> tokens;
  while (true) {
    docs.clear();
    const bool more = reader.next_batch(docs);
    if (docs.empty() && !more) break;
    tokens.assign(docs.size(), {});
    // Documents of a batch are tokenized in parallel and appended in order.
    std::vector<std::exception_ptr> errors(static_cast<size_t>(threads));
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        try {
          for (size_t i = size_t(t); i < docs.size(); i += size_t(threads)) {
            const std::vector<int32_t> ids = tokenizer->encode(docs[i]);
            auto& out = tokens[i];
            out.reserve(ids.size() + 2);
            if (o.tokenizer == "gpt2")
              out.push_back(uint16_t(kGpt2EndOfText));
            else if (next_document + i > 0)
              out.insert(out.end(), {uint16_t('\n'), uint16_t('\n')});
            out.insert(out.end(), ids.begin(), ids.end());
          }
        } catch (...) {
          errors[size_t(t)] = std::current_exception();
        }
      });
    for (auto& th : pool) th.join();
    for (auto& e : errors)
      if (e) std::rethrow_exception(e);
    for (size_t i = 0; i < docs.size(); ++i) {
      p.tokens += tokens[i].size();
      if (tail) {
        all.insert(all.end(), tokens[i].begin(), tokens[i].end());
        continue;
      }
      const bool to_val = is_validation(next_document + i, o.val_fraction);
      (to_val ? val : train).add(tokens[i]);
      ++documents[to_val];
    }
    next_document += docs.size();
    p.bytes_read = reader.bytes_read();
    p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (progress) progress(p);
    if (!more) break;
  }
  if (tail) {
    const size_t split = size_t(double(all.size()) * (1.0 - o.val_fraction));
    if (split == 0 || split == all.size())
      throw std::runtime_error("prepare-data: " + std::to_string(all.size()) +
                               " tokens leave an empty split at --val-fraction " +
                               std::to_string(o.val_fraction));
    train.add(std::vector<uint16_t>(all.begin(), all.begin() + std::ptrdiff_t(split)));
    val.add(std::vector<uint16_t>(all.begin() + std::ptrdiff_t(split), all.end()));
    documents[0] = int64_t(next_document);  // the documents straddle the cut: counted as train
  }
  if (documents[0] == 0 || (!tail && documents[1] == 0))
    throw std::runtime_error("prepare-data: " + std::to_string(documents[0] + documents[1]) +
                             " document(s) give " + std::to_string(documents[0]) +
                             " training and " + std::to_string(documents[1]) +
                             " validation documents; both splits need one (more documents, another "
                             "--val-fraction, or --text-documents paragraphs)");
  train.finish();
  val.finish();

  json shards = train.shards();
  for (const auto& s : val.shards()) shards.push_back(s);
  Sha256 id;
  const std::string tokenizer_text = tokenizer_id.dump();
  id.update(tokenizer_text.data(), tokenizer_text.size());
  for (const auto& s : shards) id.update(s["sha256"].get_ref<const std::string&>().data(), 64);
  result.dataset_id = id.hex();
  result.train_tokens = train.tokens();
  result.val_tokens = val.tokens();
  result.documents = documents[0] + documents[1];
  result.shards = int(shards.size());
  const json manifest = {
      {"format",
       "llm.c token shards: 256 x int32 header (magic 20240520, version 1, count), uint16 tokens"},
      {"dataset_id", result.dataset_id},
      {"inputs", inputs},
      {"options", options},
      {"tokenizer", tokenizer_id},
      {"documents", {{"train", documents[0]}, {"val", documents[1]}}},
      {"tokens", {{"train", result.train_tokens}, {"val", result.val_tokens}}},
      {"shards", shards}};
  const std::string tmp = manifest_path.string() + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp);
    out << manifest.dump(2) << "\n";
    if (!out) throw std::runtime_error(tmp + ": cannot write (disk full?)");
  }
  fs::rename(tmp, manifest_path);
  return result;
}

DatasetManifest find_manifest(const std::string& first_shard_path) {
  DatasetManifest m;
  const fs::path path = fs::path(first_shard_path).parent_path() / "manifest.json";
  std::ifstream in(path);
  if (!in) return m;
  const json j = json::parse(in, nullptr, false);
  if (!j.is_object() || !j.contains("dataset_id")) return m;
  m.found = true;
  m.path = path.string();
  m.dataset_id = j.value("dataset_id", "");
  m.tokenizer = j.value("tokenizer", json::object()).value("name", "");
  m.train_tokens = j.value("tokens", json::object()).value("train", int64_t(0));
  m.val_tokens = j.value("tokens", json::object()).value("val", int64_t(0));
  return m;
}

}  // namespace trainer_core
