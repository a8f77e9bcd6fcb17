#!/usr/bin/env bash
# Reproduces the paper's claims at CPU scale and writes docs/reproduction.md with its plots
# (docs/reproduction/*.png). Not part of CI: about 45 minutes on two cores.
#
#   scripts/reproduce.sh            # the three CPU twins: R_L(B) with an lr grid, Table 2, Table 3
#   scripts/reproduce.sh --report   # only rewrite the report from the last run's database
#
# It starts a coordinator and one CPU worker (2 slots, 1 thread per job) on 127.0.0.1, submits
# examples/batch_size_ratio_cpu.yaml, table2_ablation_cpu.yaml and table3_architecture_cpu.yaml
# through sweepctl, waits for them, then renders the dashboard's own charts in headless Chromium
# and writes the tables and a claim-by-claim comparison with the paper.
set -euo pipefail
cd "$(dirname "$0")/.."
report_only=0
[[ "${1:-}" == "--report" ]] && report_only=1
scripts/setup.sh
scripts/build.sh >/dev/null

out=runs/reproduce
sweeps=(examples/batch_size_ratio_cpu.yaml examples/table2_ablation_cpu.yaml examples/table3_architecture_cpu.yaml)
if ((report_only == 0)); then rm -rf "$out"; fi
mkdir -p "$out"
source scripts/local_coordinator.sh
worker=
cleanup() {
  [[ -n "$worker" ]] && kill -TERM "$worker" 2>/dev/null || true
  kill -TERM "${coordinator:-}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT
start_local_coordinator "$out"

if ((report_only == 0)); then
  # What ran, for the report: start time and the commit the binaries were built from.
  echo "started=$(date -u +%Y-%m-%dT%H:%M:%SZ) commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo +uncommitted)" > "$out/run-info"
  build/worker/worker --worker-id cpu-reproduce --slots 2 --threads-per-job 1 --work-dir "$out/worker" >"$out/worker.log" 2>&1 &
  worker=$!
  for f in "${sweeps[@]}"; do build/cli/sweepctl submit "$f"; done
  start_s=$SECONDS
  for id in $(build/cli/sweepctl list --limit 3 | awk '{print $1}' | sort -n); do build/cli/sweepctl watch "$id" >/dev/null; done
  echo "seconds=$((SECONDS - start_s))" >> "$out/run-info"
fi
ids=$(build/cli/sweepctl list --limit 3 | awk '{print $1}' | sort -n | tr '\n' ' ')
mkdir -p docs/reproduction
for id in $ids; do build/cli/sweepctl results "$id" --format md --output "$out/results-$id.md"; done
node scripts/reproduction_report.mjs --base "http://127.0.0.1:$http_port" --sweeps "$ids" --results-dir "$out" \
  --run-info "$out/run-info" --out docs/reproduction.md --plots docs/reproduction
echo "reproduce: wrote docs/reproduction.md and docs/reproduction/*.png"
