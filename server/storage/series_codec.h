// The on-disk encoding of one chunk of one metric series: up to kMaxChunkPoints (step, value,
// flagged) points, lossless (every double comes back bit for bit, NaN payloads and -0 included).
//
// Layout, version 1 (varints are LEB128, signed ones zigzag):
//   u8 version = 1
//   varint n                       1..kMaxChunkPoints
//   u8 step_mode                   0: steps first..first+n-1   1: deltas follow
//   svarint first_step (>= 0)      then, in mode 1, n-1 varints: step[i] - step[i-1] >= 1
//   u8 value_mode                  0: XOR   1: scaled integers
//     XOR (any doubles, Gorilla-style at byte granularity): value[0] as 8 bytes little endian;
//       then per value x = bits ^ previous bits, one byte (leading zero bytes << 4 | trailing
//       zero bytes) and the 8 - leading - trailing bytes between them, little endian; x == 0 is
//       the single byte 0x80.
//     scaled integers (values that are exactly i / 10^k, e.g. token counts with k = 0 and
//       microsecond-rounded seconds with k = 6): u8 k, then svarint i[0], svarint i[1] - i[0],
//       and svarints of the second differences.
//   varint flagged count, then the flagged point indexes: the first, then deltas >= 1.
//
// Beside the chunks, a summary block holds what downsampled reads need of up to 16 consecutive
// chunks (chunk = block * 16 + slot), so that a long curve is read from a few rows:
//   u8 version = 1, u8 count 1..16, then per chunk in increasing slot order:
//   u8 slot, svarint first_step, varint last_step - first_step, varint points, varint finite,
//   varint flagged, and when finite > 0: min, max, sum as 8-byte little-endian doubles.
//
// Why this shape: curves are long and smooth, so a value is most often close to the previous
// one; counters and clocks advance by nearly constant steps. A typical training step costs
// about 7 bytes for a noisy double, 1-3 for tokens and clock, nothing for consecutive steps.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace server {

struct SeriesPoint {
  int64_t step = 0;
  double value = 0;
  bool flagged = false;  // the loss series flags spikes here
};

constexpr size_t kMaxChunkPoints = 4096;

struct SeriesCodecError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// What downsampled reads need of one chunk, without its points.
struct ChunkSummary {
  int64_t chunk = 0;
  int64_t first_step = 0, last_step = 0;
  int64_t points = 0, finite = 0;
  int64_t flagged = 0;                           // points flagged or not finite
  double min_value = 0, max_value = 0, sum = 0;  // over the finite values; 0 when there are none
};
constexpr int64_t kChunksPerSummaryBlock = 16;

ChunkSummary summarize_chunk(int64_t chunk, const std::vector<SeriesPoint>& points);
// `summaries`: 1..16 of one block (chunk / 16 equal), sorted by chunk.
std::string encode_summary_block(const std::vector<ChunkSummary>& summaries);
std::vector<ChunkSummary> decode_summary_block(int64_t block, const std::string& bytes);

// `points` must be sorted by step, strictly increasing from >= 0, 1..kMaxChunkPoints of them.
std::string encode_series_chunk(const std::vector<SeriesPoint>& points);
// Throws SeriesCodecError naming the defect on anything encode_series_chunk cannot have written.
std::vector<SeriesPoint> decode_series_chunk(const std::string& bytes);

}  // namespace server
