// RoPE angle tables (Gpt uploads them; generation gathers their rows by position): (seq, rot/2)
// cosines and sines, pair i of position t rotating by t * theta^(-2i/rot).
#pragma once

#include <cmath>
#include <vector>

#include "trainer_core/config/train_config.h"

namespace trainer_core {

struct RopeTable {
  int half = 0;  // rot / 2 entries per position
  std::vector<float> cos, sin;
};

inline RopeTable make_rope_table(const ModelConfig& m) {
  RopeTable t;
  const int rot = m.resolved_rope_dim(), S = m.seq_len;
  t.half = rot / 2;
  t.cos.resize(size_t(S) * t.half);
  t.sin.resize(size_t(S) * t.half);
  for (int pos = 0; pos < S; ++pos)
    for (int i = 0; i < t.half; ++i) {
      const double angle = pos * std::pow(m.rope_theta, -2.0 * i / rot);
      t.cos[size_t(pos) * t.half + i] = float(std::cos(angle));
      t.sin[size_t(pos) * t.half + i] = float(std::sin(angle));
    }
  return t;
}

}  // namespace trainer_core
