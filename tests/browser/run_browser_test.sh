#!/usr/bin/env bash
# Runs a browser test file with node's test runner. Where node or Debian's Chromium is missing it
# skips (exit 77), except in CI (the environment variable CI set), where a tool scripts/setup.sh
# installs being gone is a failure: only GPU tests may skip in CI (tests/required_tool.h).
set -euo pipefail
missing=()
command -v node >/dev/null || missing+=(node)
[[ -x /usr/bin/chromium ]] || missing+=(/usr/bin/chromium)
if ((${#missing[@]})); then
  if [[ -n "${CI:-}" && "${CI}" != 0 && "${CI}" != false ]]; then
    echo "CI: a tool scripts/setup.sh installs is missing: ${missing[*]}" >&2
    exit 1
  fi
  echo "skipped: ${missing[*]} missing (scripts/setup.sh installs them)"
  exit 77
fi
exec node --test "$1"
