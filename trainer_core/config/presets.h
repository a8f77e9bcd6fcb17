// Model presets: the paper's XS..XL (GPT-2 vocabulary) and tiny CPU presets (byte vocabulary).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "trainer_core/config/train_config.h"

namespace trainer_core {

struct Preset {
  std::string name;
  ModelConfig model;
  double adamw_lr;  // the paper's AdamW-matched learning rate (docs/science.md)
};

const std::vector<Preset>& all_presets();
std::optional<Preset> find_preset(const std::string& name);

}  // namespace trainer_core
