#!/usr/bin/env bash
# Reproduces the paper's claims at CPU scale and writes docs/reproduction.md with its plots
# (docs/reproduction/*.png). Not part of CI: about 60 minutes on two cores (the Table 2 and
# Table 3 twins bracket every row's lr), plus about 40 for the tuning section.
#
#   scripts/reproduce.sh            # the three CPU twins, then the tuning section
#   scripts/reproduce.sh --report   # only rewrite the twins' report from the last run's database
#   scripts/reproduce.sh --tuning   # only the tuning section (adaptive sweeps), rewritten in place
#   scripts/reproduce.sh --tuning-report   # only rewrite the tuning section from its last database
#
# It starts a coordinator and one CPU worker (2 slots, 1 thread per job) on 127.0.0.1, submits
# examples/batch_size_ratio_cpu.yaml, table2_ablation_cpu.yaml and table3_architecture_cpu.yaml
# through sweepctl, waits for them, then renders the dashboard's own charts in headless Chromium
# and writes the tables and a claim-by-claim comparison with the paper. The tuning section
# (scripts/reproduction_tuning_report.mjs) runs, on a coordinator of its own: the R_L(B) twin
# with lrs the coordinator brackets (batch_size_ratio_tuned_cpu.yaml), tune_lr_cpu.yaml with and
# without early stopping, and telescoping_cpu.yaml against full_grid_256_cpu.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
report_only=0 tuning_only=0
[[ "${1:-}" == "--report" ]] && report_only=1
[[ "${1:-}" == "--tuning" ]] && tuning_only=1
[[ "${1:-}" == "--tuning-report" ]] && tuning_only=2
scripts/setup.sh
scripts/build.sh >/dev/null
source scripts/local_coordinator.sh

# The tuning section: its sweeps on a coordinator of its own, its block of docs/reproduction.md.
tuning_section() {
  local dir=runs/reproduce-tuning worker= report_only=${1:-0}
  if ((report_only)); then
    start_local_coordinator "$dir"
    local coordinator_pid=$coordinator
    local ids
    ids=$(build/cli/sweepctl list --limit 5 | awk '{print $1}' | sort -n | tr '\n' ' ')
    # The results as today's coordinator computes them, like the tables around them.
    for id in $ids; do build/cli/sweepctl results "$id" --format md --output "$dir/results-$id.md"; done
    node scripts/reproduction_tuning_report.mjs --base "http://127.0.0.1:$http_port" \
      --sweeps "$ids" --results-dir "$dir" --run-info "$dir/run-info" --out docs/reproduction.md
    kill -TERM "$coordinator_pid" 2>/dev/null || true
    wait "$coordinator_pid" 2>/dev/null || true
    return
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  start_local_coordinator "$dir"
  local coordinator_pid=$coordinator
  echo "started=$(date -u +%Y-%m-%dT%H:%M:%SZ) commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!docs/reproduction.md' ':!docs/reproduction' || echo +uncommitted)" > "$dir/run-info"
  build/worker/worker --worker-id cpu-reproduce-tuning --slots 2 --threads-per-job 1 --work-dir "$dir/worker" >"$dir/worker.log" 2>&1 &
  worker=$!
  # tune_lr_cpu.yaml with its early_stop line in force: the same search, stopping hopeless runs.
  sed -e 's/^  # early_stop:/  early_stop:/' -e 's/^name: tune-lr-cpu/name: tune-lr-early-stop-cpu/' \
    examples/tune_lr_cpu.yaml > "$dir/tune_lr_early_stop_cpu.yaml"
  local files=(examples/batch_size_ratio_tuned_cpu.yaml examples/tune_lr_cpu.yaml "$dir/tune_lr_early_stop_cpu.yaml"
               examples/telescoping_cpu.yaml examples/full_grid_256_cpu.yaml)
  local ids=()
  for f in "${files[@]}"; do ids+=("$(build/cli/sweepctl submit "$f" | sed -n 's/.*sweep \([0-9]*\).*/\1/p' | head -1)"); done
  local start_s=$SECONDS
  for id in "${ids[@]}"; do build/cli/sweepctl watch "$id" >/dev/null; done
  echo "seconds=$((SECONDS - start_s))" >> "$dir/run-info"
  for id in "${ids[@]}"; do build/cli/sweepctl results "$id" --format md --output "$dir/results-$id.md"; done
  node scripts/reproduction_tuning_report.mjs --base "http://127.0.0.1:$http_port" --sweeps "${ids[*]}" \
    --results-dir "$dir" --run-info "$dir/run-info" --out docs/reproduction.md
  kill -TERM "$worker" 2>/dev/null || true
  kill -TERM "$coordinator_pid" 2>/dev/null || true
  wait "$worker" "$coordinator_pid" 2>/dev/null || true
}
if ((tuning_only)); then
  tuning_section $((tuning_only == 2))
  exit 0
fi

out=runs/reproduce
sweeps=(examples/batch_size_ratio_cpu.yaml examples/table2_ablation_cpu.yaml examples/table3_architecture_cpu.yaml)
if ((report_only == 0)); then rm -rf "$out"; fi
mkdir -p "$out"
worker=
cleanup() {
  [[ -n "$worker" ]] && kill -TERM "$worker" 2>/dev/null || true
  kill -TERM "${coordinator:-}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT
start_local_coordinator "$out"

if ((report_only == 0)); then
  # What ran, for the report: start time and the commit the binaries were built from (the report's
  # own outputs, which this script rewrites, do not count as uncommitted changes).
  echo "started=$(date -u +%Y-%m-%dT%H:%M:%SZ) commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!docs/reproduction.md' ':!docs/reproduction' || echo +uncommitted)" > "$out/run-info"
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
if ((report_only == 0)); then
  cleanup
  trap - EXIT
  tuning_section
  echo "reproduce: wrote the tuning section of docs/reproduction.md"
fi
