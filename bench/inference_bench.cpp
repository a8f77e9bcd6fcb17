// Greedy generation with the KV cache at batch 1 and 64 (--quick: 1 and 4): decode tokens/s
// (all sequences' tokens per second of decode steps), the one-pass prefill's time, and cache
// bytes per token for MHA, MLA and MoE-MLA at the same preset (tiny and XS; L too on a GPU), on
// the CPU or a GPU backend. Prints figures only.
//   build/bench/inference_bench [--quick] [--backend cpu|cuda]
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "trainer_core/backend/backend.h"
#include "trainer_core/config/presets.h"
#include "trainer_core/model/generator.h"

using namespace trainer_core;

int main(int argc, char** argv) {
  bool quick = false;
  std::string backend_name = "cpu";
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) {
      quick = true;
    } else if (!std::strcmp(argv[i], "--backend") && i + 1 < argc) {
      backend_name = argv[++i];
    } else {
      std::fprintf(stderr, "usage: inference_bench [--quick] [--backend cpu|cuda]\n");
      return 2;
    }
  }
  std::unique_ptr<Backend> backend;
  try {
    backend = make_backend(backend_name, 0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "inference_bench: %s\n", e.what());
    return 1;
  }
  std::printf("backend: %s\n", backend_name.c_str());
  std::printf("%-14s %6s %12s %12s %14s %14s %10s\n", "model", "batch", "decode tok/s",
              "prefill ms", "cache B/token", "cache vs MHA", "params");
  std::vector<std::string> bases = {"tiny"};
  if (!quick) bases.push_back("XS");
  if (!quick && backend_name == "cuda") bases.push_back("L");
  const std::vector<int> batches = quick ? std::vector<int>{1, 4} : std::vector<int>{1, 64};
  for (const std::string& base : bases) {
    double mha_cache = 0;
    for (const std::string variant : {"", "-mla", "-moe-mla"}) {
      const ModelConfig m = find_preset(base + variant)->model;
      Gpt model(m, *backend);
      model.init_weights(1);
      Generator generator(model, *backend);
      const int prompt_len = m.seq_len / 8, gen_len = quick ? 16 : m.seq_len / 2;
      for (int batch : batches) {
        std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(batch));
        for (int s = 0; s < batch; ++s)
          for (int i = 0; i < prompt_len; ++i)
            prompts[size_t(s)].push_back(int32_t((i * 31 + s * 7 + 7) % m.vocab_size));
        GenerationStats stats;
        generator.generate_batch(prompts, gen_len, &stats);
        if (variant.empty()) mha_cache = stats.cache_bytes_per_token;
        std::printf("%-14s %6d %12.1f %12.2f %14.0f %13.2fx %9.2fM   (prompt %d, generated %d)\n",
                    (base + variant).c_str(), batch, stats.tokens_per_second,
                    stats.prefill_seconds * 1e3, stats.cache_bytes_per_token,
                    mha_cache / stats.cache_bytes_per_token, model.num_params() / 1e6,
                    stats.prompt_tokens, stats.generated_tokens);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
