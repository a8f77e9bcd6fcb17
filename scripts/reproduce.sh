#!/usr/bin/env bash
# Reproduces the paper's claims at CPU scale and writes docs/reproduction.md with its plots
# (docs/reproduction/*.png). Not part of CI: about 2 hours on two cores in all (the budget for the
# whole is 150 minutes); each part can run alone, and the report says how long each took.
#
#   scripts/reproduce.sh            # every part: the ladder, the tuning section, the twins
#   scripts/reproduce.sh --ladder   # only the ladder section (claims 1, 2 and 2b decided on budget
#                                   # ladders, batch_size_ratio_ladder_cpu.yaml), about 15 minutes
#   scripts/reproduce.sh --tuning   # only the tuning section (adaptive sweeps), about 25 minutes
#   scripts/reproduce.sh --transfer # only the transfer section (telescoping and muP against a full
#                                   # grid at width 256), about 40 minutes
#   scripts/reproduce.sh --twins    # only the three twins and the rest of the report, about 60
#   scripts/reproduce.sh --ladder-report | --tuning-report | --transfer-report | --report
#                                   # only rewrite that part (--report: the twins') from its
#                                   # last run's database, with today's results code
#
# Each part starts its own coordinator and one CPU worker (2 slots, 1 thread per job) on
# 127.0.0.1, submits its sweeps through sweepctl, waits for them, and rewrites its own part of
# docs/reproduction.md, leaving the others as they are; each part says when it ran and how long
# it took, and the twins' part (written last) adds up the parts it finds. The twins are
# batch_size_ratio_cpu.yaml (R_L(B) on one cosine budget), table2_ablation_cpu.yaml and
# table3_architecture_cpu.yaml, with the dashboard's own charts rendered in headless Chromium.
# The tuning section (scripts/reproduction_tuning_report.mjs): the R_L(B) twin with lrs the
# coordinator brackets and tune_lr_cpu.yaml with and without early stopping. The transfer section
# (scripts/reproduction_transfer_report.mjs): telescoping_cpu.yaml against full_grid_256_cpu.yaml,
# with transfer regret. The ladder section
# (scripts/reproduction_ladder_report.mjs): batch_size_ratio_ladder_cpu.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
part=all report_only=0
case "${1:-}" in
  "") ;;
  --ladder | --tuning | --transfer | --twins) part=${1#--} ;;
  --ladder-report | --tuning-report | --transfer-report) part=${1#--} part=${part%-report} report_only=1 ;;
  --report) part=twins report_only=1 ;;
  *) echo "usage: scripts/reproduce.sh [--ladder | --tuning | --transfer | --twins | --<part>-report | --report]" >&2
     exit 2 ;;
esac
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
    # The part's sweeps are its first ones (a database from before a part was split off may
    # hold more).
    part_ids=($(build/cli/sweepctl list --limit 100 | awk '{print $1}' | sort -n | head -n "$#"))
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
    examples/tune_lr_cpu.yaml /tmp/tune_lr_early_stop_cpu.$$.yaml
  rm -f /tmp/tune_lr_early_stop_cpu.$$.yaml
  # The results as today's coordinator computes them, like the tables around them.
  for id in "${part_ids[@]}"; do build/cli/sweepctl results "$id" --format md --output "$dir/results-$id.md"; done
  node scripts/reproduction_tuning_report.mjs --base "http://127.0.0.1:$http_port" --sweeps "${part_ids[*]}" \
    --results-dir "$dir" --run-info "$dir/run-info" --out docs/reproduction.md
  stop_part
}

# The transfer section: telescoping across widths and muP, against a full grid at the target width.
transfer_section() {
  local dir=runs/reproduce-transfer
  run_part "$dir" "${1:-0}" cpu-reproduce-transfer examples/telescoping_cpu.yaml \
    examples/full_grid_256_cpu.yaml
  for id in "${part_ids[@]}"; do build/cli/sweepctl results "$id" --format md --output "$dir/results-$id.md"; done
  node scripts/reproduction_transfer_report.mjs --base "http://127.0.0.1:$http_port" --sweeps "${part_ids[*]}" \
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
# The three twins, their part of docs/reproduction.md (claims 3-6 and the supporting cosine view of
# claims 1, 2 and 2b) and its plots; it adds up the times of the parts it finds.
twins_section() {
  local dir=runs/reproduce
  run_part "$dir" "${1:-0}" cpu-reproduce examples/batch_size_ratio_cpu.yaml \
    examples/table2_ablation_cpu.yaml examples/table3_architecture_cpu.yaml
  mkdir -p docs/reproduction
  for id in "${part_ids[@]}"; do build/cli/sweepctl results "$id" --format md --output "$dir/results-$id.md"; done
  node scripts/reproduction_report.mjs --base "http://127.0.0.1:$http_port" --sweeps "${part_ids[*]}" --results-dir "$dir" \
    --run-info "$dir/run-info" --part-infos "runs/reproduce-ladder/run-info runs/reproduce-tuning/run-info runs/reproduce-transfer/run-info" \
    --out docs/reproduction.md --plots docs/reproduction
  stop_part
}

if [[ $part == all || $part == ladder ]]; then
  ladder_section "$report_only"
  echo "reproduce: wrote the ladder section of docs/reproduction.md"
fi
if [[ $part == all || $part == tuning ]]; then
  tuning_section "$report_only"
  echo "reproduce: wrote the tuning section of docs/reproduction.md"
fi
if [[ $part == all || $part == transfer ]]; then
  transfer_section "$report_only"
  echo "reproduce: wrote the transfer section of docs/reproduction.md"
fi
if [[ $part == all || $part == twins ]]; then
  twins_section "$report_only"
  echo "reproduce: wrote docs/reproduction.md's twins and docs/reproduction/*.png"
fi
