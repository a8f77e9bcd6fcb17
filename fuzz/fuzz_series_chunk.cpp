// Stored series bytes (a damaged database): decoding gives points or a SeriesCodecError, never a
// crash; whatever decodes encodes back to bytes that decode to the same points and summaries.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "server/storage/series_codec.h"

using namespace server;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    const auto points = decode_series_chunk(bytes);
    const auto again = decode_series_chunk(encode_series_chunk(points));
    if (again.size() != points.size()) std::abort();
    for (size_t i = 0; i < points.size(); ++i)
      if (again[i].step != points[i].step ||
          std::bit_cast<uint64_t>(again[i].value) != std::bit_cast<uint64_t>(points[i].value) ||
          again[i].flagged != points[i].flagged)
        std::abort();
  } catch (const SeriesCodecError&) {
  }
  try {
    const auto block = decode_summary_block(3, bytes);
    const auto again = decode_summary_block(3, encode_summary_block(block));
    if (again.size() != block.size()) std::abort();
  } catch (const SeriesCodecError&) {
  }
  return 0;
}
