#include "trainer_core/config/presets.h"

namespace trainer_core {
namespace {

Preset make(const std::string& name, int layers, int hidden, int heads, int ffn, int vocab, int seq,
            double lr) {
  ModelConfig m;
  m.preset = name;
  m.n_layer = layers;
  m.hidden = hidden;
  m.n_head = heads;
  m.ffn_hidden = ffn;
  m.vocab_size = vocab;
  m.seq_len = seq;
  return {name, m, lr};
}

// Every preset also comes as "<name>-mla" (latent attention) and "<name>-moe-mla" (latent
// attention with 8 experts, top-2): the paper's Table 3 architectures at each size.
std::vector<Preset> with_architecture_variants(std::vector<Preset> base) {
  std::vector<Preset> all = base;
  for (const Preset& p : base) {
    Preset mla = p;
    mla.name = mla.model.preset = p.name + "-mla";
    mla.model.attention = Attention::kMla;
    all.push_back(mla);
    Preset moe = mla;
    moe.name = moe.model.preset = p.name + "-moe-mla";
    moe.model.ffn = Ffn::kMoe;
    all.push_back(moe);
  }
  return all;
}

}  // namespace

const std::vector<Preset>& all_presets() {
  constexpr int kGpt2Vocab = 50257, kBytes = 256;
  static const std::vector<Preset> presets = with_architecture_variants({
      // Paper presets (docs/science.md): GPT-2 vocabulary, sequence 512.
      make("XS", 6, 256, 8, 1024, kGpt2Vocab, 512, 2.5e-3),
      make("S", 6, 512, 8, 2048, kGpt2Vocab, 512, 2.0e-3),
      make("M", 9, 512, 8, 2048, kGpt2Vocab, 512, 1.8e-3),
      make("L", 12, 768, 12, 3072, kGpt2Vocab, 512, 1.6e-3),
      make("XL", 12, 1024, 16, 4096, kGpt2Vocab, 512, 1.2e-3),
      // CPU presets, byte-level vocabulary: a whole sweep in minutes on two cores.
      make("tiny", 2, 128, 4, 512, kBytes, 128, 3e-3),
      make("tiny-deep", 4, 128, 4, 512, kBytes, 128, 3e-3),
      make("tiny-wide", 2, 192, 6, 768, kBytes, 256, 3e-3),
      // For tests: seconds, not minutes.
      make("micro", 1, 32, 2, 64, kBytes, 32, 3e-3),
  });
  return presets;
}

std::optional<Preset> find_preset(const std::string& name) {
  for (const auto& p : all_presets())
    if (p.name == name) return p;
  return std::nullopt;
}

}  // namespace trainer_core
