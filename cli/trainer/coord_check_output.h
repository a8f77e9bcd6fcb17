// What `trainer coord-check` prints and writes: a table of each projection's figures against
// width with their log-log slopes, and the same as JSON (scripts/coord_check_plot.mjs draws it).
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>

#include "trainer_core/train/coord_check.h"

namespace trainer_cli {

void print_coord_check(std::FILE* out, const trainer_core::CoordCheckResult& result,
                       const std::string& label);
nlohmann::json coord_check_json(const trainer_core::CoordCheckResult& result,
                                const std::string& label);

}  // namespace trainer_cli
