#!/usr/bin/env bash
# The README's test command: set up, build, run every ctest test, then fuzz each parser briefly.
#   scripts/test.sh [ctest args]          everything (what CI runs)
#   scripts/test.sh --fast [ctest args]   the inner loop: every test but those labelled slow (the
#                                         browser, the one-node Slurm, the benchmark smokes, the
#                                         bf16 training comparison), no fuzzing; prints its time
set -euo pipefail
cd "$(dirname "$0")/.."
fast=0
if [[ "${1:-}" == "--fast" ]]; then
  fast=1
  shift
fi
started=$SECONDS
scripts/setup.sh
scripts/check_format.sh  # the tree is formatted as .clang-format says
scripts/build.sh
if ((fast)); then
  tests_started=$SECONDS
  (cd "${BUILD_DIR:-build}" && ctest --output-on-failure -j "$(nproc)" -LE slow "$@")
  echo "test.sh --fast: passed; tests $((SECONDS - tests_started)) s, $((SECONDS - started)) s in all (slow tests and fuzzing left out: scripts/test.sh runs them)"
  exit 0
fi
(cd "${BUILD_DIR:-build}" && ctest --output-on-failure -j "$(nproc)" "$@")
# Every parser that takes outside input, fuzzed for a short fixed time (scripts/fuzz.sh 600 for longer).
FUZZ_SEED=${FUZZ_SEED:-1} scripts/fuzz.sh "${FUZZ_SECONDS:-10}"
