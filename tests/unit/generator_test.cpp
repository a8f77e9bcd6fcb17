// Cached one-token-at-a-time inference must compute what the training forward pass computes.
#include "trainer_core/model/generator.h"

#include <gtest/gtest.h>

#include "trainer_core/backend/cpu/cpu_backend.h"
#include "trainer_core/model/presets.h"

using namespace trainer_core;

namespace {

void expect_cached_inference_matches_training_forward(ModelConfig m) {
  m.seq_len = 24;
  m.init_std = 0.1;
  auto backend = make_cpu_backend(1);
  Gpt model(m, *backend);
  model.init_weights(5);
  std::vector<int32_t> inputs(m.seq_len), targets(m.seq_len);
  for (int i = 0; i < m.seq_len; ++i) {
    inputs[i] = int32_t((i * 37 + 11) % m.vocab_size);
    targets[i] = int32_t((i * 53 + 7) % m.vocab_size);
  }
  const double training = model.forward_loss(inputs.data(), targets.data(), 1);
  Generator generator(model, *backend);
  EXPECT_NEAR(generator.sequence_loss(inputs, targets), training, 1e-4)
      << m.attention << "/" << m.ffn;
  GenerationStats stats;
  const auto out = generator.generate({inputs.begin(), inputs.begin() + 8}, 10, &stats);
  EXPECT_EQ(out.size(), 10u);
  EXPECT_GT(stats.tokens_per_second, 0.0);
  EXPECT_THROW(generator.generate(inputs, 10), std::invalid_argument);  // beyond seq_len
}

TEST(Generator, MhaCacheMatchesTraining) {
  expect_cached_inference_matches_training_forward(find_preset("micro")->model);
}
TEST(Generator, MlaLatentCacheMatchesTraining) {
  ModelConfig m = find_preset("micro-mla")->model;
  m.q_latent_dim = 12;
  expect_cached_inference_matches_training_forward(m);
}
TEST(Generator, MoeMlaMatchesTraining) {
  ModelConfig m = find_preset("micro-moe-mla")->model;
  m.shared_expert = true;
  expect_cached_inference_matches_training_forward(m);
}

TEST(Generator, LatentCacheIsSmallerThanMhaCache) {
  auto backend = make_cpu_backend(1);
  Gpt mha(find_preset("XS")->model, *backend);
  Gpt mla(find_preset("XS-mla")->model, *backend);
  const double a = Generator(mha, *backend).cache_bytes_per_token();
  const double b = Generator(mla, *backend).cache_bytes_per_token();
  EXPECT_DOUBLE_EQ(a, 6 * 2 * 256 * 4.0);     // 2 x hidden floats per layer
  EXPECT_DOUBLE_EQ(b, 6 * (128 + 16) * 4.0);  // latent hidden/2 + rope_dim 16
  EXPECT_GT(a / b, 3.5);
}

}  // namespace
