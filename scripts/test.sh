#!/usr/bin/env bash
# The README's test command: set up, build, run every ctest test, then fuzz each parser briefly.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/check_format.sh  # the tree is formatted as .clang-format says
scripts/build.sh
(cd "${BUILD_DIR:-build}" && ctest --output-on-failure -j "$(nproc)" "$@")
# Every parser that takes outside input, fuzzed for a short fixed time (scripts/fuzz.sh 600 for longer).
FUZZ_SEED=${FUZZ_SEED:-1} scripts/fuzz.sh "${FUZZ_SECONDS:-10}"
