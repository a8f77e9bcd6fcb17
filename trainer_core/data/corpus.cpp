#include "trainer_core/data/corpus.h"

#include <zlib.h>

#include <filesystem>
#include <stdexcept>

namespace trainer_core {

namespace {
constexpr const char* kGcidePath = "/usr/share/dictd/gcide.dict.dz";
}

CorpusSource resolve_corpus(const std::string& name) {
  if (name == "gcide") {
    if (!std::filesystem::exists(kGcidePath))
      throw std::runtime_error(std::string("corpus 'gcide': ") + kGcidePath +
                               " is missing; install the Debian package dict-gcide "
                               "(scripts/setup.sh does)");
    return {name, kGcidePath};
  }
  if (!std::filesystem::is_regular_file(name))
    throw std::runtime_error("corpus '" + name + "': no such file (expected 'gcide' or a path)");
  return {name, name};
}

std::string read_corpus(const CorpusSource& source, int64_t max_bytes) {
  // gzread reads gzip, dictzip and plain files alike.
  gzFile file = gzopen(source.path.c_str(), "rb");
  if (!file) throw std::runtime_error("corpus '" + source.name + "': cannot open " + source.path);
  std::string text;
  char buffer[1 << 16];
  while (max_bytes <= 0 || int64_t(text.size()) < max_bytes) {
    const int got = gzread(file, buffer, sizeof buffer);
    if (got < 0) {
      int code = 0;
      const std::string message = gzerror(file, &code);
      gzclose(file);
      throw std::runtime_error("corpus '" + source.name + "': read error in " + source.path + ": " +
                               message);
    }
    if (got == 0) break;
    text.append(buffer, size_t(got));
  }
  gzclose(file);
  if (max_bytes > 0 && int64_t(text.size()) > max_bytes) text.resize(size_t(max_bytes));
  if (text.empty())
    throw std::runtime_error("corpus '" + source.name + "': " + source.path + " is empty");
  return text;
}

}  // namespace trainer_core
