#!/usr/bin/env bash
# Reproduces the paper's claims at CPU scale and writes docs/reproduction.md with its plots
# (docs/reproduction/*.png). Not part of CI: about 60 minutes on two cores (the Table 2 and
# Table 3 twins bracket every row's lr), plus about 40 for the tuning section and 30 for the
# ladder section; each part can run alone, and the report says how long each took.
#
#   scripts/reproduce.sh            # the three CPU twins, then the tuning and ladder sections
#   scripts/reproduce.sh --report   # only rewrite the twins' report from the last run's database
#   scripts/reproduce.sh --tuning   # only the tuning section (adaptive sweeps), rewritten in place
#   scripts/reproduce.sh --tuning-report   # only rewrite the tuning section from its last database
#   scripts/reproduce.sh --ladder   # only the ladder section (claims 1 and 2 decided on budget
#                                   # ladders, batch_size_ratio_ladder_cpu.yaml), rewritten in place
#   scripts/reproduce.sh --ladder-report   # only rewrite the ladder section from its last database
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
report_only=0 tuning_only=0 ladder_only=0
[[ "${1:-}" == "--report" ]] && report_only=1
[[ "${1:-}" == "--ladder" ]] && ladder_only=1
[[ "${1:-}" == "--ladder-report" ]] && ladder_only=2
[[ "${1:-}" == "--tuning" ]] && tuning_only=1
[[ "${1:-}" == "--tuning-report" ]] && tuning_only=2
scripts/setup.sh
scripts/build.sh >/dev/null
source scripts/local_coordinator.sh

# What ran, for a part's report: start time and the commit the binaries were built from (the
# report's own outputs, which this script rewrites, do not count as uncommitted changes).
record_run_info() {
  echo "started=$(date -u +%Y-%m-%dT%H:%M:%SZ) commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!docs/reproduction.md' ':!docs/reproduction' || echo +uncommitted)" > "$1/run-info"
}

# A part with a coordinator of its own in DIR: runs the sweep files on one CPU worker (2 slots, 1
# thread per job) and appends how long they took to DIR/run-info; with REPORT_ONLY=1, only
# restarts the coordinator on the part's last database. Sets `part_ids` (the sweeps, in order) and
# leaves the coordinator running (`part_coordinator`) for the report; stop_part ends it.
run_part() {
  local dir=$1 report_only=$2 worker_id=$3
  shift 3
  if ((report_only == 0)); then rm -rf "$dir"; fi
  mkdir -p "$dir"
  start_local_coordinator "$dir"
  part_coordinator=$coordinator part_worker= part_ids=()
  trap stop_part EXIT
  if ((report_only)); then
    part_ids=($(build/cli/sweepctl list --limit "$#" | awk '{print $1}' | sort -n))
    return
  fi
  record_run_info "$dir"
  build/worker/worker --worker-id "$worker_id" --slots 2 --threads-per-job 1 --work-dir "$dir/worker" >"$dir/worker.log" 2>&1 &
  part_worker=$!
  for f in "$@"; do part_ids+=("$(build/cli/sweepctl submit "$f" | sed -n 's/.*sweep \([0-9]*\).*/\1/p' | head -1)"); done
  local start_s=$SECONDS
  for id in "${part_ids[@]}"; do build/cli/sweepctl watch "$id" >/dev/null; done
  echo "seconds=$((SECONDS - start_s))" >> "$dir/run-info"
}
stop_part() {
  [[ -n "${part_worker:-}" ]] && kill -TERM "$part_worker" 2>/dev/null || true
  kill -TERM "$part_coordinator" 2>/dev/null || true
  wait 2>/dev/null || true
  trap - EXIT
}

# The tuning section: its sweeps on a coordinator of its own, its block of docs/reproduction.md.
tuning_section() {
  local dir=runs/reproduce-tuning
  mkdir -p "$dir"
  # tune_lr_cpu.yaml with its early_stop line in force: the same search, stopping hopeless runs.
  sed -e 's/^  # early_stop:/  early_stop:/' -e 's/^name: tune-lr-cpu/name: tune-lr-early-stop-cpu/' \
    examples/tune_lr_cpu.yaml > /tmp/tune_lr_early_stop_cpu.$$.yaml
  run_part "$dir" "${1:-0}" cpu-reproduce-tuning examples/batch_size_ratio_tuned_cpu.yaml \
    examples/tune_lr_cpu.yaml /tmp/tune_lr_early_stop_cpu.$$.yaml examples/telescoping_cpu.yaml \
    examples/full_grid_256_cpu.yaml
  rm -f /tmp/tune_lr_early_stop_cpu.$$.yaml
  # The results as today's coordinator computes them, like the tables around them.
  for id in "${part_ids[@]}"; do build/cli/sweepctl results "$id" --format md --output "$dir/results-$id.md"; done
  node scripts/reproduction_tuning_report.mjs --base "http://127.0.0.1:$http_port" --sweeps "${part_ids[*]}" \
    --results-dir "$dir" --run-info "$dir/run-info" --out docs/reproduction.md
  stop_part
}

# The ladder section: claims 1 and 2 decided on budget ladders with pre-registered targets.
ladder_section() {
  local dir=runs/reproduce-ladder
  run_part "$dir" "${1:-0}" cpu-reproduce-ladder examples/batch_size_ratio_ladder_cpu.yaml
  for id in "${part_ids[@]}"; do build/cli/sweepctl results "$id" --format md --output "$dir/results-$id.md"; done
  node scripts/reproduction_ladder_report.mjs --base "http://127.0.0.1:$http_port" --sweep "${part_ids[0]}" \
    --results-dir "$dir" --run-info "$dir/run-info" --out docs/reproduction.md --plots docs/reproduction
  stop_part
}
if ((ladder_only)); then
  ladder_section $((ladder_only == 2))
  exit 0
fi
if ((tuning_only)); then
  tuning_section $((tuning_only == 2))
  exit 0
fi

# The three twins, their part of docs/reproduction.md and its plots.
out=runs/reproduce
run_part "$out" "$report_only" cpu-reproduce examples/batch_size_ratio_cpu.yaml \
  examples/table2_ablation_cpu.yaml examples/table3_architecture_cpu.yaml
mkdir -p docs/reproduction
for id in "${part_ids[@]}"; do build/cli/sweepctl results "$id" --format md --output "$out/results-$id.md"; done
node scripts/reproduction_report.mjs --base "http://127.0.0.1:$http_port" --sweeps "${part_ids[*]}" --results-dir "$out" \
  --run-info "$out/run-info" --out docs/reproduction.md --plots docs/reproduction
stop_part
echo "reproduce: wrote docs/reproduction.md and docs/reproduction/*.png"
if ((report_only == 0)); then
  tuning_section
  echo "reproduce: wrote the tuning section of docs/reproduction.md"
  ladder_section
  echo "reproduce: wrote the ladder section of docs/reproduction.md"
fi
