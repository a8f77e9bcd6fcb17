// bf16 conversions on the host: the CPU backend's storage and the tests' reference.
#pragma once

#include <cstdint>
#include <cstring>

#include "trainer_core/backend/backend.h"

namespace trainer_core {

// Nearest bf16, ties to even: add 0x7fff plus the lowest kept bit, then truncate. A NaN keeps
// its sign and becomes a quiet NaN (truncation alone could turn a NaN into an infinity).
inline Bf16 round_to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return Bf16{uint16_t((u >> 16) | 0x0040u)};
  u += 0x7fffu + ((u >> 16) & 1u);
  return Bf16{uint16_t(u >> 16)};
}

// Exact: every bf16 value is an fp32 value.
inline float widen(Bf16 x) {
  const uint32_t u = uint32_t(x.bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

}  // namespace trainer_core
