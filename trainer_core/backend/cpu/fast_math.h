// Branch-free exp that GCC vectorizes (the libm call would not be, without -ffast-math).
// Cephes polynomial on [-ln2/2, ln2/2]; relative error below 2e-7 over the clamped range.
#pragma once

#include <bit>
#include <cstdint>

namespace trainer_core::cpu {

inline float fast_exp(float x) {
  // Selects and arithmetic only: no std::fmin/fmax/floor, which without -ffast-math stay libm
  // calls (NaN rules), and one call in a loop keeps it scalar (the tiny preset's GELU spent a
  // quarter of its step so). n is x·log2(e) rounded to the nearest integer by adding and taking
  // away 1.5·2^23 (exact for |x·log2 e| < 2^22; r then lies in [-ln2/2, ln2/2] as before). A NaN
  // is computed as 0 (converting NaN to an integer is undefined) and returned as NaN: it must
  // show, not vanish. Vectorizes with -fno-trapping-math (trainer_core/CMakeLists.txt).
  const bool nan = x != x;
  float c = nan ? 0.0f : x;
  c = c < -87.0f ? -87.0f : c;
  c = c > 88.0f ? 88.0f : c;
  constexpr float kRoundToInteger = 12582912.0f;  // 1.5 * 2^23
  const float n = (c * 1.44269504088896341f + kRoundToInteger) - kRoundToInteger;
  const float r = c - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t exponent_bits = (static_cast<int32_t>(n) + 127) << 23;
  return nan ? x : p * std::bit_cast<float>(exponent_bits);
}

inline float fast_tanh(float x) { return 1.0f - 2.0f / (fast_exp(2.0f * x) + 1.0f); }

inline float fast_sigmoid(float x) { return 1.0f / (1.0f + fast_exp(-x)); }

}  // namespace trainer_core::cpu
