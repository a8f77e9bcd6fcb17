// Greedy generation with a KV cache, on the host (CPU): the inference side of Table 3.
// MHA caches every layer's keys and values (2 * hidden floats per token per layer); MLA caches
// only the latent and the shared rotated key (kv_latent + rope_dim floats), and attends in the
// latent space: the key up-projection is absorbed into the query and the value up-projection is
// applied once to the attention-weighted latent.
#pragma once

#include <cstdint>
#include <vector>

#include "trainer_core/model/gpt.h"
#include "trainer_core/model/rope_table.h"

namespace trainer_core {

struct GenerationStats {
  int batch = 1;
  int prompt_tokens = 0;
  int generated_tokens = 0;
  double tokens_per_second = 0;      // generated tokens / time spent generating them
  double cache_bytes_per_token = 0;  // over all layers
};

class Generator {
 public:
  // Copies the model's weights to the host; the model may change afterwards.
  Generator(const Gpt& model, Backend& backend);

  // Greedy continuation of `prompt` by `count` tokens, within the model's seq_len.
  std::vector<int32_t> generate(const std::vector<int32_t>& prompt, int count,
                                GenerationStats* stats = nullptr);
  double cache_bytes_per_token() const;
  // Mean cross-entropy of targets given inputs, one cached step per position: the same number
  // the training forward pass computes for one sequence (tests compare the two).
  double sequence_loss(const std::vector<int32_t>& inputs, const std::vector<int32_t>& targets);

 private:
  void reset();
  // Runs one token at position pos through the model, updating the cache; returns its logits.
  const std::vector<float>& step(int32_t token, int pos);
  const float* w(const std::string& name) const;

  ModelConfig config_;
  std::vector<ParamInfo> params_;
  std::vector<float> weights_;
  RopeTable rope_;
  std::vector<std::vector<float>> cache_a_, cache_b_;  // per layer: MHA K,V / MLA latent, rope key
  std::vector<float> logits_;
};

}  // namespace trainer_core
