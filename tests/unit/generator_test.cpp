// Generation through the KV cache must compute what the training forward pass computes: in one
// pass over the whole sequence (prefill), one token at a time (decode), and in chunks; and a
// batch of prompts of different lengths must generate what each prompt generates alone.
#include "trainer_core/model/generator.h"

#include <gtest/gtest.h>

#include "trainer_core/backend/cpu/cpu_backend.h"
#include "trainer_core/config/presets.h"

using namespace trainer_core;

namespace {

ModelConfig small(ModelConfig m) {
  m.seq_len = 24;
  m.init_std = 0.1;
  return m;
}

void expect_cached_inference_matches_training_forward(ModelConfig m, double tolerance = 1e-4) {
  m = small(m);
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
  for (int chunk : {m.seq_len, 1, 5})
    EXPECT_NEAR(generator.sequence_loss(inputs, targets, chunk), training, tolerance)
        << m.attention << "/" << m.ffn << ", " << chunk << " tokens per pass";
  GenerationStats stats;
  const auto out = generator.generate({inputs.begin(), inputs.begin() + 8}, 10, &stats);
  EXPECT_EQ(out.size(), 10u);
  EXPECT_GT(stats.tokens_per_second, 0.0);
  EXPECT_EQ(stats.batch, 1);
  EXPECT_EQ(stats.prompt_tokens, 8);
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
TEST(Generator, LayerNormSwigluUntiedHeadMatchesTraining) {
  ModelConfig m = find_preset("micro")->model;
  m.norm = Norm::kLayerNorm;
  m.activation = Activation::kSwiglu;
  m.tie_embeddings = false;
  expect_cached_inference_matches_training_forward(m);
}

// bf16 precision: the generator's projections round as training's do. An input computed in a
// different order may round to the neighbouring bf16 value, hence the looser tolerance.
TEST(Generator, Bf16ModelMatchesItsTrainingForward) {
  for (const char* preset : {"micro", "micro-moe-mla"}) {
    ModelConfig m = find_preset(preset)->model;
    m.precision = Precision::kBf16;
    expect_cached_inference_matches_training_forward(m, 2e-3);
  }
}

// Prompts of 3, 9 and 1 tokens generated together: the shorter ones are padded in the prefill,
// and their padding must neither be attended nor survive in their caches.
TEST(Generator, ABatchOfPromptsGeneratesWhatEachPromptGeneratesAlone) {
  for (const char* preset : {"micro", "micro-moe-mla"}) {
    const ModelConfig m = small(find_preset(preset)->model);
    auto backend = make_cpu_backend(1);
    Gpt model(m, *backend);
    model.init_weights(9);
    std::vector<std::vector<int32_t>> prompts = {{5, 17, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9}, {42}};
    Generator generator(model, *backend);
    GenerationStats stats;
    const auto together = generator.generate_batch(prompts, 12, &stats);
    ASSERT_EQ(together.size(), prompts.size());
    EXPECT_EQ(stats.batch, 3);
    EXPECT_EQ(stats.prompt_tokens, 9);
    EXPECT_EQ(stats.generated_tokens, 12);
    for (size_t i = 0; i < prompts.size(); ++i) {
      Generator alone(model, *backend);
      EXPECT_EQ(together[i], alone.generate(prompts[i], 12)) << preset << ", prompt " << i;
    }
  }
}

TEST(Generator, BadPromptsAreClearErrors) {
  const ModelConfig m = small(find_preset("micro")->model);
  auto backend = make_cpu_backend(1);
  Gpt model(m, *backend);
  model.init_weights(1);
  Generator generator(model, *backend);
  auto message = [&](const std::vector<std::vector<int32_t>>& prompts, int count) {
    try {
      generator.generate_batch(prompts, count);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message({}, 3), "generate: no prompts");
  EXPECT_EQ(message({{1}, {}}, 3), "generate: the prompt is empty (prompt 1)");
  EXPECT_EQ(message({{1, m.vocab_size}}, 3), "generate: token id " + std::to_string(m.vocab_size) +
                                                 " outside the vocabulary of " +
                                                 std::to_string(m.vocab_size));
  EXPECT_EQ(message({{1}}, 0), "generate: at least one token to generate");
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
