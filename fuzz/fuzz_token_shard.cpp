// A token shard file with arbitrary bytes: open_shard accepts it (and every read stays inside
// the file) or refuses it with a message, never a crash.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "trainer_core/data/token_shards.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/fuzz_token_shard_" + std::to_string(::getpid()) + ".bin";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    auto shard = trainer_core::open_shard(path);
    std::vector<uint16_t> tokens(std::min<size_t>(shard->size(), 4096));
    if (!tokens.empty()) shard->read(shard->size() - tokens.size(), tokens.size(), tokens.data());
  } catch (const std::runtime_error&) {
  }
  return 0;
}
