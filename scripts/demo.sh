#!/usr/bin/env bash
# The README's main command: set up and build, start a coordinator and a CPU worker on
# 127.0.0.1, submit the quick example sweep (AdamW vs Muon x batch size x seeds, with and without
# weight decay), follow it, and print its results and where to look. The coordinator keeps
# serving the dashboard afterwards (the worker stops); --stop stops both at the end.
#   scripts/demo.sh [--stop]
set -euo pipefail
cd "$(dirname "$0")/.."
keep=1
[[ "${1:-}" == "--stop" ]] && keep=0
scripts/setup.sh
scripts/build.sh >/dev/null

out=runs/demo
mkdir -p runs
# A demo coordinator left from an earlier run is stopped first (its pid file is ours).
if [[ -f runs/demo.coordinator.pid ]]; then
  kill -TERM "$(cat runs/demo.coordinator.pid)" 2>/dev/null || true
  rm -f runs/demo.coordinator.pid
  sleep 0.5
fi
rm -rf "$out" && mkdir -p "$out"
source scripts/local_coordinator.sh
cleanup() {
  kill -TERM ${worker:-} 2>/dev/null || true
  if ((keep == 0)); then
    kill -TERM ${coordinator:-} 2>/dev/null || true
    rm -f runs/demo.coordinator.pid
  fi
  wait ${worker:-} 2>/dev/null || true
}
trap cleanup EXIT
start_local_coordinator "$out" setsid
echo $coordinator > runs/demo.coordinator.pid

build/worker/worker --worker-id cpu-worker-1 --slots 2 --work-dir "$out/worker" >"$out/worker.log" 2>&1 &
worker=$!

echo "== coordinator on $SWEEP_COORDINATOR, one CPU worker (2 slots); submitting examples/quick_cpu_sweep.yaml"
build/cli/sweepctl submit examples/quick_cpu_sweep.yaml --watch
sweep=$(build/cli/sweepctl list --limit 1 | awk '{print $1}')
echo
build/cli/sweepctl results "$sweep"
build/cli/sweepctl results "$sweep" --format csv --output "$out/results.csv"
build/cli/sweepctl results "$sweep" --format md --output "$out/results.md"
build/cli/sweepctl results "$sweep" --format latex --output "$out/results.tex"
cat <<EOM

Where to look:
  dashboard    http://127.0.0.1:$http_port/#/sweep/$sweep
  results      $out/results.{csv,md,tex}   (sweepctl results $sweep --format csv|md|latex)
  curves       $out/sweeps.db               (every point: sweepctl export $sweep --output curves.csv, for pandas)
  metrics      http://127.0.0.1:$http_port/metrics
  logs         $out/coordinator.log, $out/worker.log, $out/worker/job-*.log
  more         SWEEP_COORDINATOR=$SWEEP_COORDINATOR build/cli/sweepctl status $sweep | workers | list
EOM
if ((keep)); then
  echo "  The coordinator (pid $coordinator) keeps serving the dashboard; stop it with: kill $coordinator"
fi
