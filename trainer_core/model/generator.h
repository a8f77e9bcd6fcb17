// Greedy generation with a KV cache on the model's backend (a GPU worker generates on the GPU):
// the inference side of Table 3. Several prompts are generated at once. The prompts are
// prefilled in one pass (every prompt token of every sequence through the model together,
// writing the caches), then each step decodes one token for every sequence.
//
// MHA caches every layer's keys and values (2 * hidden floats per token per layer). MLA caches
// only [shared rotated key | latent] (rope_dim + kv_latent floats) and attends in the latent
// space: the key up-projection is absorbed into the query, and the value up-projection is applied
// once to the attention-weighted latent.
//
// The model's precision applies to every projection (Gpt::project); MLA's absorbed per-head
// products with the up-projections stay fp32.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "trainer_core/model/gpt.h"

namespace trainer_core {

struct GenerationStats {
  int batch = 1;                     // sequences generated together
  int prompt_tokens = 0;             // of the longest prompt
  int generated_tokens = 0;          // per sequence
  double prefill_seconds = 0;        // the one pass over the prompts
  double tokens_per_second = 0;      // generated tokens of all sequences / time spent decoding
  double cache_bytes_per_token = 0;  // over all layers
};

class Generator {
 public:
  // Reads the model's weights in place, on its backend: the model must not be trained while
  // this generator is in use.
  Generator(const Gpt& model, Backend& backend);
  ~Generator();

  // Greedy continuation of each prompt by `count` tokens. Prompts may differ in length; each
  // must fit with its continuation within the model's seq_len.
  std::vector<std::vector<int32_t>> generate_batch(const std::vector<std::vector<int32_t>>& prompts,
                                                   int count, GenerationStats* stats = nullptr);
  std::vector<int32_t> generate(const std::vector<int32_t>& prompt, int count,
                                GenerationStats* stats = nullptr);
  double cache_bytes_per_token() const;
  // Mean cross-entropy of targets given inputs, fed through the cache `chunk` tokens per pass
  // (the whole sequence: the one-pass prefill; 1: the decode step): the number the training
  // forward pass computes for one sequence (tests compare the two).
  double sequence_loss(const std::vector<int32_t>& inputs, const std::vector<int32_t>& targets,
                       int chunk);

 private:
  struct Buffers;
  // Caches for `batch` sequences of the model's seq_len (kept while the batch size stays).
  void ensure_caches(int batch);
  // Runs `count` new tokens of each of `batch` sequences, (batch, count) row-major, at positions
  // start[b] .. start[b] + count - 1, through the model; writes the caches and leaves the final
  // norm's output (batch·count, hidden) in the buffers' h.
  void forward(const int32_t* tokens, const std::vector<int32_t>& start, int batch, int count);
  void attention(int layer, int batch, int tokens);

  const Gpt& model_;
  const ModelConfig& config_;
  Backend& backend_;
  std::unique_ptr<Buffers> buffers_;
  int cache_batch_ = 0;
  std::vector<Tensor> cache_a_, cache_b_;  // per layer: MHA keys, values / MLA [rope key | latent]
};

}  // namespace trainer_core
