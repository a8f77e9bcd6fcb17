#include "trainer_core/train/exit_codes.h"

#include <cstdio>
#include <exception>

#include "trainer_core/backend/backend.h"
#include "trainer_core/config/train_config.h"

namespace trainer_core {

const char* outcome_name(RunOutcome outcome) {
  switch (outcome) {
    case RunOutcome::kSucceeded:
      return "succeeded";
    case RunOutcome::kDiverged:
      return "diverged";
    case RunOutcome::kStopped:
      return "stopped";
  }
  return "succeeded";
}

std::optional<RunOutcome> parse_outcome(std::string_view name) {
  for (RunOutcome o : {RunOutcome::kSucceeded, RunOutcome::kDiverged, RunOutcome::kStopped})
    if (name == outcome_name(o)) return o;
  return std::nullopt;
}

ExitCode exit_code_of(RunOutcome outcome) {
  switch (outcome) {
    case RunOutcome::kSucceeded:
      return kExitSucceeded;
    case RunOutcome::kDiverged:
      return kExitDiverged;
    case RunOutcome::kStopped:
      return kExitStopped;
  }
  return kExitError;
}

int exit_code_of(const std::function<int()>& body) {
  try {
    return body();
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "error: invalid config:\n");
    for (const auto& p : e.problems) std::fprintf(stderr, "  %s\n", p.to_string().c_str());
    return kExitBadConfig;
  } catch (const OutOfMemory& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return kExitOutOfMemory;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return kExitError;
  }
}

}  // namespace trainer_core
