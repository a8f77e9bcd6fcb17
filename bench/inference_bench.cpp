// Greedy generation with the KV cache (batch 1): tokens/s and cache bytes per token for MHA,
// MLA and MoE-MLA at the same preset, on the CPU or a GPU backend. Prints figures only.
//   build/bench/inference_bench [--quick] [--backend cpu|cuda]
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "trainer_core/backend/backend.h"
#include "trainer_core/model/generator.h"
#include "trainer_core/model/presets.h"

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
  std::printf("%-14s %12s %14s %16s %10s\n", "model", "tokens/s", "cache B/token", "cache vs MHA",
              "params");
  for (const std::string& base :
       quick ? std::vector<std::string>{"tiny"} : std::vector<std::string>{"tiny", "XS"}) {
    double mha_cache = 0;
    for (const std::string variant : {"", "-mla", "-moe-mla"}) {
      const ModelConfig m = find_preset(base + variant)->model;
      Gpt model(m, *backend);
      model.init_weights(1);
      Generator generator(model, *backend);
      const int prompt_len = m.seq_len / 8, gen_len = quick ? 16 : m.seq_len / 2;
      std::vector<int32_t> prompt(static_cast<size_t>(prompt_len));
      for (int i = 0; i < prompt_len; ++i) prompt[size_t(i)] = int32_t((i * 31 + 7) % m.vocab_size);
      GenerationStats stats;
      generator.generate(prompt, gen_len, &stats);
      if (variant.empty()) mha_cache = stats.cache_bytes_per_token;
      std::printf("%-14s %12.1f %14.0f %15.2fx %9.2fM   (prompt %d, generated %d, batch 1)\n",
                  (base + variant).c_str(), stats.tokens_per_second, stats.cache_bytes_per_token,
                  mha_cache / stats.cache_bytes_per_token, model.num_params() / 1e6,
                  stats.prompt_tokens, stats.generated_tokens);
    }
  }
  return 0;
}
