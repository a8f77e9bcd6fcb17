// A fixed pseudo-random batch of token ids for the training benchmarks: speed does not depend on
// the text, and the same seed keeps runs comparable.
#pragma once

#include <cstdint>
#include <vector>

#include "trainer_core/util/rng.h"

struct RandomBatch {
  std::vector<int32_t> inputs, targets;
};

inline RandomBatch random_batch(size_t tokens, int vocab) {
  RandomBatch b{std::vector<int32_t>(tokens), std::vector<int32_t>(tokens)};
  trainer_core::UniformRng rng(7);
  for (size_t i = 0; i < tokens; ++i) {
    b.inputs[i] = int32_t(rng.below(vocab));
    b.targets[i] = int32_t(rng.below(vocab));
  }
  return b;
}
