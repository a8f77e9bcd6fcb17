// The GPT-2 BPE tokenizer on arbitrary bytes (invalid UTF-8 included): ids in range, and
// decoding gives the input back.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "trainer_core/data/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::unique_ptr<trainer_core::Tokenizer> gpt2 =
      trainer_core::make_tokenizer("gpt2", "");
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto ids = gpt2->encode(text);
  for (int32_t id : ids)
    if (id < 0 || id >= gpt2->vocab_size()) std::abort();
  if (gpt2->decode(ids) != text) std::abort();
  return 0;
}
