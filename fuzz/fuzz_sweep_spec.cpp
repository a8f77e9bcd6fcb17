// A sweep file as the coordinator receives it: parse, validate, expand. Any input must end in a
// plan or a list of problems, never a crash, and within the document bounds. A valid tune:
// section must also survive the store's round trip and give the planner's stage grids.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "sweep_file/sweep_spec.h"

namespace {
void check_tune(const sweep_file::SweepPlan& plan) {
  if (!plan.problems.empty() || !plan.tune) return;
  const sweep_file::TuneSpec back =
      sweep_file::tune_spec_from_json(sweep_file::to_json(*plan.tune));
  if (sweep_file::to_json(back) != sweep_file::to_json(*plan.tune)) std::abort();
  // Stage 0: at most 100 lrs x 20 weight decays; later stages a cross of at most 41 + 40 points
  // (a span of at most 40 steps on each axis).
  for (int stage = 0; stage < back.stages(); ++stage)
    for (bool full_span : {false, true})
      if (sweep_file::stage_points(back, back.all_start_values(), stage, {1e-3, 0.1}, full_span)
              .size() > (stage == 0 ? 2000u : 81u))
        std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  check_tune(sweep_file::plan_sweep(text, "fuzz.yaml", 200));
  check_tune(sweep_file::plan_sweep(text, "fuzz.json", 200));
  return 0;
}
