// A fixed batch of token ids and next-token targets, spread over the vocabulary by two linear
// patterns (input i: (i * in_step + in_offset) mod V; target i: (i * target_step + target_offset)
// mod V), so that every run of a test sees the same tokens. Shared by the model gradient tests
// and the GPU-against-CPU tests; each keeps the pattern its tolerances were measured with.
#pragma once

#include <cstdint>
#include <vector>

#include "trainer_core/config/train_config.h"

namespace test_util {

struct TokenBatch {
  std::vector<int32_t> inputs, targets;
};

struct TokenPattern {
  int in_step = 7, in_offset = 3, target_step = 5, target_offset = 1;
};

inline TokenBatch token_batch(const trainer_core::ModelConfig& m, int batch, TokenPattern p = {}) {
  TokenBatch t;
  for (size_t i = 0; i < size_t(batch) * size_t(m.seq_len); ++i) {
    t.inputs.push_back(
        int32_t((i * size_t(p.in_step) + size_t(p.in_offset)) % size_t(m.vocab_size)));
    t.targets.push_back(
        int32_t((i * size_t(p.target_step) + size_t(p.target_offset)) % size_t(m.vocab_size)));
  }
  return t;
}

}  // namespace test_util
