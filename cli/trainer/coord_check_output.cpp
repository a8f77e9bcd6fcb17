#include "coord_check_output.h"

#include <algorithm>
#include <cmath>

namespace trainer_cli {

using trainer_core::coord_quantity_name;
using trainer_core::CoordCheckResult;

void print_coord_check(std::FILE* out, const CoordCheckResult& r, const std::string& label) {
  std::fprintf(out, "coordinate check: %s; %d step(s), mean over %d seed(s)\n", label.c_str(),
               r.steps, r.seeds);
  std::fprintf(out, "%-28s %-7s", "projection", "figure");
  for (int w : r.widths) std::fprintf(out, " %10d", w);
  std::fprintf(out, " %7s\n", "slope");
  double steepest = 0;
  for (const auto& s : r.series) {
    std::fprintf(out, "%-28s %-7s", s.projection.c_str(), coord_quantity_name(s.quantity));
    for (double v : s.rms) std::fprintf(out, " %10.4g", v);
    std::fprintf(out, " %+7.3f\n", s.slope);
    steepest = std::max(steepest, std::fabs(s.slope));
  }
  std::fprintf(out,
               "largest |slope|: %.3f (muP keeps every figure flat in width: |slope| near 0)\n",
               steepest);
}

nlohmann::json coord_check_json(const CoordCheckResult& r, const std::string& label) {
  nlohmann::json series = nlohmann::json::array();
  for (const auto& s : r.series)
    series.push_back({{"projection", s.projection},
                      {"figure", coord_quantity_name(s.quantity)},
                      {"rms", s.rms},
                      {"slope", s.slope}});
  return {{"label", label},
          {"widths", r.widths},
          {"steps", r.steps},
          {"seeds", r.seeds},
          {"series", series}};
}

}  // namespace trainer_cli
