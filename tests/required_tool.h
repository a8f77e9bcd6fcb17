// Tests of a tool that scripts/setup.sh installs (the one-node Slurm, kubectl, Chromium, Python's
// gRPC) skip where the tool is missing on a developer's machine, and fail in CI (the environment
// variable CI set; .ci/run sets it): a CI machine that lost a tool must not stay green. Only GPU
// tests may skip in CI.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>

namespace test_tools {
inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && *ci != '\0' && std::string(ci) != "0" && std::string(ci) != "false";
}
}  // namespace test_tools

// Ends the test: a skip with `reason`, or in CI a failure saying the tool is missing.
#define SKIP_UNLESS_CI(reason)                                                                    \
  do {                                                                                            \
    if (test_tools::in_ci())                                                                      \
      GTEST_FAIL() << "CI: a tool scripts/setup.sh installs is missing (only GPU tests may skip " \
                      "in CI): "                                                                  \
                   << reason;                                                                     \
    GTEST_SKIP() << reason;                                                                       \
  } while (0)
