#include "server/storage/series_codec.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <optional>

namespace server {
namespace {

constexpr uint8_t kVersion = 1;
enum StepMode : uint8_t { kConsecutiveSteps = 0, kStepDeltas = 1 };
enum ValueMode : uint8_t { kXor = 0, kScaledIntegers = 1 };
constexpr uint8_t kXorZero = 0x80;  // leading = 8: the value repeats
constexpr double kPowersOfTen[] = {1, 1e3, 1e6, 1e9};
constexpr int kScaleExponents[] = {0, 3, 6, 9};
constexpr int64_t kMaxExactInteger = int64_t(1) << 53;

uint64_t bits_of(double v) { return std::bit_cast<uint64_t>(v); }
uint64_t zigzag(int64_t v) { return (uint64_t(v) << 1) ^ uint64_t(v >> 63); }
int64_t unzigzag(uint64_t v) { return int64_t(v >> 1) ^ -int64_t(v & 1); }

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(char(uint8_t(v) | 0x80));
    v >>= 7;
  }
  out.push_back(char(v));
}

class Reader {
 public:
  explicit Reader(const std::string& bytes) : p_(bytes.data()), end_(bytes.data() + bytes.size()) {}
  uint8_t byte(const char* what) {
    if (p_ == end_) fail(std::string("truncated at ") + what);
    return uint8_t(*p_++);
  }
  uint64_t varint(const char* what) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      const uint8_t b = byte(what);
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    fail(std::string("varint too long at ") + what);
  }
  uint64_t little_endian(int n, const char* what) {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= uint64_t(byte(what)) << (8 * i);
    return v;
  }
  bool done() const { return p_ == end_; }
  [[noreturn]] static void fail(const std::string& why) {
    throw SeriesCodecError("series chunk: " + why);
  }

 private:
  const char* p_;
  const char* end_;
};

// The exponent k for which every value is exactly i / 10^k with |i| < 2^53, if any. The check
// uses the decoder's own expression, so decoding reproduces each double bit for bit.
std::optional<int> scale_exponent_of(const std::vector<SeriesPoint>& points) {
  for (int e = 0; e < int(std::size(kScaleExponents)); ++e) {
    bool exact = true;
    for (const SeriesPoint& p : points) {
      const double scaled = p.value * kPowersOfTen[e];
      if (!(std::fabs(scaled) < double(kMaxExactInteger))) {
        exact = false;
        break;
      }
      const int64_t i = std::llround(scaled);
      if (bits_of(double(i) / kPowersOfTen[e]) != bits_of(p.value)) {
        exact = false;
        break;
      }
    }
    if (exact) return e;
  }
  return std::nullopt;
}

void put_xor_values(std::string& out, const std::vector<SeriesPoint>& points) {
  uint64_t previous = bits_of(points[0].value);
  for (int i = 0; i < 8; ++i) out.push_back(char(previous >> (8 * i)));
  for (size_t i = 1; i < points.size(); ++i) {
    const uint64_t current = bits_of(points[i].value), x = current ^ previous;
    previous = current;
    if (x == 0) {
      out.push_back(char(kXorZero));
      continue;
    }
    const int leading = std::countl_zero(x) / 8, trailing = std::countr_zero(x) / 8;
    out.push_back(char(leading << 4 | trailing));
    for (int b = trailing; b < 8 - leading; ++b) out.push_back(char(x >> (8 * b)));
  }
}

void put_scaled_values(std::string& out, const std::vector<SeriesPoint>& points, int e) {
  out.push_back(char(kScaleExponents[e]));
  int64_t previous = 0, previous_delta = 0;
  for (size_t i = 0; i < points.size(); ++i) {
    const int64_t v = std::llround(points[i].value * kPowersOfTen[e]);
    const int64_t delta = v - previous;  // |v| < 2^53: no overflow
    put_varint(out, zigzag(i == 0 ? v : i == 1 ? delta : delta - previous_delta));
    previous_delta = delta;
    previous = v;
  }
}

}  // namespace

std::string encode_series_chunk(const std::vector<SeriesPoint>& points) {
  if (points.empty() || points.size() > kMaxChunkPoints)
    throw SeriesCodecError("series chunk: " + std::to_string(points.size()) + " points (1.." +
                           std::to_string(kMaxChunkPoints) + " allowed)");
  if (points[0].step < 0) throw SeriesCodecError("series chunk: negative step");
  bool consecutive = true;
  for (size_t i = 1; i < points.size(); ++i) {
    if (points[i].step <= points[i - 1].step)
      throw SeriesCodecError("series chunk: steps not increasing");
    consecutive = consecutive && points[i].step == points[i - 1].step + 1;
  }
  std::string out;
  out.reserve(16 + points.size() * 4);
  out.push_back(char(kVersion));
  put_varint(out, points.size());
  out.push_back(char(consecutive ? kConsecutiveSteps : kStepDeltas));
  put_varint(out, zigzag(points[0].step));
  if (!consecutive)
    for (size_t i = 1; i < points.size(); ++i)
      put_varint(out, uint64_t(points[i].step - points[i - 1].step));
  if (const auto e = scale_exponent_of(points)) {
    out.push_back(char(kScaledIntegers));
    put_scaled_values(out, points, *e);
  } else {
    out.push_back(char(kXor));
    put_xor_values(out, points);
  }
  std::vector<size_t> flagged;
  for (size_t i = 0; i < points.size(); ++i)
    if (points[i].flagged) flagged.push_back(i);
  put_varint(out, flagged.size());
  for (size_t k = 0; k < flagged.size(); ++k)
    put_varint(out, k == 0 ? flagged[0] : flagged[k] - flagged[k - 1]);
  return out;
}

std::vector<SeriesPoint> decode_series_chunk(const std::string& bytes) {
  Reader in(bytes);
  if (const uint8_t v = in.byte("version"); v != kVersion)
    Reader::fail("version " + std::to_string(v) + " (this coordinator reads version 1)");
  const uint64_t n = in.varint("point count");
  if (n == 0 || n > kMaxChunkPoints)
    Reader::fail(std::to_string(n) + " points (1.." + std::to_string(kMaxChunkPoints) +
                 " allowed)");
  std::vector<SeriesPoint> points(n);
  const uint8_t step_mode = in.byte("step mode");
  if (step_mode != kConsecutiveSteps && step_mode != kStepDeltas) Reader::fail("unknown step mode");
  // Steps stay within int64: a chunk spans at most n steps past its first in mode 0, and each
  // delta is checked against the room left in mode 1.
  int64_t step = unzigzag(in.varint("first step"));
  if (step < 0) Reader::fail("negative first step");
  for (uint64_t i = 0; i < n; ++i) {
    if (i > 0) {
      const uint64_t delta = step_mode == kConsecutiveSteps ? 1 : in.varint("step delta");
      if (delta == 0 || delta > uint64_t(INT64_MAX - step)) Reader::fail("step delta out of range");
      step += int64_t(delta);
    }
    points[i].step = step;
  }
  const uint8_t value_mode = in.byte("value mode");
  if (value_mode == kXor) {
    uint64_t previous = in.little_endian(8, "first value");
    points[0].value = std::bit_cast<double>(previous);
    for (uint64_t i = 1; i < n; ++i) {
      const uint8_t header = in.byte("value header");
      uint64_t x = 0;
      if (header != kXorZero) {
        const int leading = header >> 4, trailing = header & 15;
        if (leading + trailing >= 8) Reader::fail("bad value header");
        x = in.little_endian(8 - leading - trailing, "value") << (8 * trailing);
      }
      previous ^= x;
      points[i].value = std::bit_cast<double>(previous);
    }
  } else if (value_mode == kScaledIntegers) {
    const uint8_t k = in.byte("scale");
    int e = 0;
    while (e < int(std::size(kScaleExponents)) && kScaleExponents[e] != k) ++e;
    if (e == int(std::size(kScaleExponents))) Reader::fail("unknown scale 10^" + std::to_string(k));
    // Wrapping arithmetic: a hostile chunk decodes to some doubles, never to undefined behaviour.
    uint64_t v = 0, delta = 0;
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t d = uint64_t(unzigzag(in.varint("scaled value")));
      if (i == 0)
        v = d;
      else if (i == 1)
        delta = d, v += delta;
      else
        delta += d, v += delta;
      points[i].value = double(int64_t(v)) / kPowersOfTen[e];
    }
  } else {
    Reader::fail("unknown value mode");
  }
  const uint64_t flagged = in.varint("flag count");
  if (flagged > n) Reader::fail("more flags than points");
  uint64_t index = 0;
  for (uint64_t k = 0; k < flagged; ++k) {
    const uint64_t d = in.varint("flag index");
    if ((k > 0 && d == 0) || d >= n || index + d >= n) Reader::fail("flag index out of range");
    index += d;
    points[index].flagged = true;
  }
  if (!in.done()) Reader::fail("trailing bytes");
  return points;
}

ChunkSummary summarize_chunk(int64_t chunk, const std::vector<SeriesPoint>& points) {
  ChunkSummary s;
  s.chunk = chunk;
  s.first_step = points.front().step;
  s.last_step = points.back().step;
  s.points = int64_t(points.size());
  for (const SeriesPoint& p : points) {
    if (!std::isfinite(p.value)) {
      ++s.flagged;
      continue;
    }
    s.flagged += p.flagged;
    s.min_value = s.finite ? std::min(s.min_value, p.value) : p.value;
    s.max_value = s.finite ? std::max(s.max_value, p.value) : p.value;
    s.sum += p.value;
    ++s.finite;
  }
  return s;
}

std::string encode_summary_block(const std::vector<ChunkSummary>& summaries) {
  if (summaries.empty() || summaries.size() > size_t(kChunksPerSummaryBlock))
    throw SeriesCodecError("summary block: " + std::to_string(summaries.size()) + " chunks");
  const int64_t block = summaries[0].chunk / kChunksPerSummaryBlock;
  std::string out;
  out.push_back(char(kVersion));
  out.push_back(char(summaries.size()));
  int64_t previous_slot = -1;
  for (const ChunkSummary& s : summaries) {
    const int64_t slot = s.chunk - block * kChunksPerSummaryBlock;
    if (slot <= previous_slot || slot >= kChunksPerSummaryBlock || s.last_step < s.first_step)
      throw SeriesCodecError("summary block: chunks not in one block, or not increasing");
    previous_slot = slot;
    out.push_back(char(slot));
    put_varint(out, zigzag(s.first_step));
    for (int64_t v : {s.last_step - s.first_step, s.points, s.finite, s.flagged})
      put_varint(out, uint64_t(v));
    if (s.finite > 0)
      for (double v : {s.min_value, s.max_value, s.sum})
        for (int i = 0; i < 8; ++i) out.push_back(char(bits_of(v) >> (8 * i)));
  }
  return out;
}

std::vector<ChunkSummary> decode_summary_block(int64_t block, const std::string& bytes) {
  Reader in(bytes);
  if (const uint8_t v = in.byte("version"); v != kVersion)
    Reader::fail("summary block version " + std::to_string(v) +
                 " (this coordinator reads version 1)");
  const uint8_t count = in.byte("count");
  if (count == 0 || count > kChunksPerSummaryBlock)
    Reader::fail("summary block of " + std::to_string(count) + " chunks");
  std::vector<ChunkSummary> out(count);
  int previous_slot = -1;
  for (ChunkSummary& s : out) {
    const int slot = in.byte("slot");
    if (slot <= previous_slot || slot >= kChunksPerSummaryBlock)
      Reader::fail("summary slots out of order");
    previous_slot = slot;
    s.chunk = block * kChunksPerSummaryBlock + slot;
    s.first_step = unzigzag(in.varint("first step"));
    const uint64_t span = in.varint("step span"), points = in.varint("points"),
                   finite = in.varint("finite"), flagged = in.varint("flagged");
    if (s.first_step < 0 || span > uint64_t(INT64_MAX - s.first_step) || points == 0 ||
        points > kMaxChunkPoints || finite > points || flagged > points)
      Reader::fail("summary counts out of range");
    s.last_step = s.first_step + int64_t(span);
    s.points = int64_t(points), s.finite = int64_t(finite), s.flagged = int64_t(flagged);
    if (finite > 0) {
      s.min_value = std::bit_cast<double>(in.little_endian(8, "min"));
      s.max_value = std::bit_cast<double>(in.little_endian(8, "max"));
      s.sum = std::bit_cast<double>(in.little_endian(8, "sum"));
    }
  }
  if (!in.done()) Reader::fail("trailing bytes after the summary block");
  return out;
}

}  // namespace server
