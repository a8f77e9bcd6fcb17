// Raw corpus text. "gcide" names the GNU Collaborative International Dictionary of English from
// the Debian package dict-gcide; anything else is a path to a plain or gzip/dictzip file.
#pragma once

#include <cstdint>
#include <string>

namespace trainer_core {

struct CorpusSource {
  std::string name;  // as given in the config
  std::string path;  // resolved file
};

// Throws std::runtime_error with the missing file and the package that provides it.
CorpusSource resolve_corpus(const std::string& name);
// Reads (and decompresses) at most max_bytes (0: all) of the corpus.
std::string read_corpus(const CorpusSource& source, int64_t max_bytes);

}  // namespace trainer_core
