// A named scalar of one step beyond the fixed fields (optimizer and MoE diagnostics, or anything
// an external trainer logs): "moe/balance_loss", "opt/lr/adamw", "opt/blocks.3/update_rms".
#pragma once

#include <string>

namespace trainer_core {

struct NamedValue {
  std::string name;
  double value = 0;
};

}  // namespace trainer_core
