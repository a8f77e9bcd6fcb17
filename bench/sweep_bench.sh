#!/usr/bin/env bash
# A sweep's tokens/s against its trainer's, on a real coordinator and CPU worker on 127.0.0.1: the
# twins' shape (docs/reproduction.md: the tiny preset, byte tokens, batch 2,048, an evaluation of
# 16,384 tokens every 16,384 trained, AdamW and Muon) as 8 runs of 245,760 tokens, and the bench
# prints
#   - the trainer alone: one AdamW and one Muon run of that shape on every core (`trainer run`),
#     before and after the sweep, tokens per second of training (its steps only) and of its whole
#     run (evaluations included);
#   - the sweep: every run's tokens over the sweep's wall time, against the trainer's training
#     rate (issue 41's target: at least 85%);
#   - where the worker's slot-seconds went: training steps, evaluation (and the checkpoints and the
#     inference figure at the end; the trainer's elapsed minus its training), the job process's
#     start and finish (spawn, data, model; the worker's started-to-ended minus the trainer's
#     elapsed), and slots idle (waiting for a lease, or nothing left to run).
#   bench/sweep_bench.sh [--slots N] [--threads-per-job T]   # default 2 slots, cores / slots threads
# Run scripts/build.sh first. Prints figures only; it never fails on a figure.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
slots=2
threads=0
while (($#)); do
  case "$1" in
    --slots) slots=$2; shift 2 ;;
    --threads-per-job) threads=$2; shift 2 ;;
    *) echo "usage: bench/sweep_bench.sh [--slots N] [--threads-per-job T]" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d /tmp/sweep-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

shape='model: {preset: tiny}
schedule: {warmup_fraction: 0.02}
training: {max_tokens: 245760, batch_tokens: 2048, micro_batch: 8, eval_every_tokens: 16384, eval_tokens: 16384}
data: {corpus: gcide, tokenizer: byte, cache_dir: .cache/tokens}'
cat >"$work/sweep.yaml" <<EOF
name: sweep-bench
base:
$(printf '%s\n' "$shape" | sed 's/^/  /')
grid:
  optimizer:
    - {name: adamw, lr: 3.0e-3}
    - {name: adamw, lr: 6.0e-3}
    - {name: muon, lr: 1.2e-2}
    - {name: muon, lr: 2.4e-2}
seeds: [1, 2]
resources: {backend: cpu}
EOF

# The trainer alone, on every core (its default thread count), after a run that prepares the
# token cache so that neither measurement pays for it.
alone() {  # alone NAME OPTIMIZER LR [--set ...]: writes $work/NAME.json, the run's summary
  { printf '%s\n' "$shape"; printf 'optimizer: {name: %s, lr: %s}\n' "$2" "$3"; } >"$work/$1.yaml"
  "$build/cli/trainer" run "$work/$1.yaml" --quiet --summary "$work/$1.json" "${@:4}"
}
alone warmup adamw 3.0e-3 --set training.max_tokens=16384 >/dev/null 2>&1 || true
alone adamw-before adamw 3.0e-3
alone muon-before muon 1.2e-2

"$build/server/coordinator" --db "$work/sweeps.db" --listen 127.0.0.1:0 --http 127.0.0.1:0 \
  --ports-file "$work/ports.json" >"$work/coordinator.log" 2>&1 &
for _ in $(seq 100); do [[ -s "$work/ports.json" ]] && break; sleep 0.2; done
grpc=127.0.0.1:$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["grpc"])' "$work/ports.json")
"$build/worker/worker" --coordinator "$grpc" --worker-id bench --slots "$slots" \
  --threads-per-job "$threads" --work-dir "$work/w" >"$work/worker.log" 2>&1 &
start=$(date +%s.%N)
id=$("$build/cli/sweepctl" --coordinator "$grpc" submit "$work/sweep.yaml" --watch |
  sed -n 's/^submitted sweep \([0-9]*\).*/\1/p')
end=$(date +%s.%N)
# And again after the sweep: the machine's speed drifts (another process, its clock), and the
# mean of both sittings is what the sweep is compared with.
alone adamw-after adamw 3.0e-3
alone muon-after muon 1.2e-2

python3 - "$work" "$id" "$start" "$end" "$slots" "$threads" "$(nproc)" <<'EOF'
import json, re, sqlite3, sys
from datetime import datetime
work, sweep, start, end, slots, threads, cores = sys.argv[1:8]
slots, cores = int(slots), int(cores)
threads = int(threads) or max(1, cores // slots)
def rates(sitting):
    runs = [json.load(open(f"{work}/{name}-{sitting}.json")) for name in ("adamw", "muon")]
    return (sum(s["tokens"] for s in runs) / sum(s["train_s"] for s in runs),
            sum(s["tokens"] for s in runs) / sum(s["elapsed_s"] for s in runs))
(before_train, before_whole), (after_train, after_whole) = rates("before"), rates("after")
train_rate, whole_rate = (before_train + after_train) / 2, (before_whole + after_whole) / 2
print(f"trainer alone ({cores} threads; one AdamW and one Muon run, before and after the sweep): "
      f"{before_train:,.0f} and {after_train:,.0f} tokens/s of training, {before_whole:,.0f} and {after_whole:,.0f} "
      f"over the whole run (evaluations included: {100 * whole_rate / train_rate:.0f}%)")
db = sqlite3.connect(f"{work}/sweeps.db")
summaries = [json.loads(s) for (s,) in db.execute(
    "SELECT summary FROM run_summaries r JOIN jobs j ON j.id = r.job_id WHERE j.sweep_id = ?", (sweep,))]
stamp = r"\[([0-9-]+ [0-9:.]+)\]"
began, ended = {}, {}
for line in open(f"{work}/worker.log"):
    m = re.search(stamp + r".* job (\d+) attempt \d+ (started|ended)", line)
    if m:
        (began if m.group(3) == "started" else ended)[m.group(2)] = datetime.fromisoformat(m.group(1))
wall = max(ended.values()) - min(began.values())
wall_s = wall.total_seconds()
tokens = sum(s["tokens"] for s in summaries)
rate = tokens / wall_s
print(f"sweep: {len(summaries)} runs, {tokens:,} tokens in {wall_s:.1f} s from the first job's start to the last's end "
      f"on {slots} slot(s) x {threads} thread(s) = {rate:,.0f} tokens/s: {100 * rate / train_rate:.0f}% of the "
      f"trainer's training rate (target >= 85%), {100 * rate / whole_rate:.0f}% of its whole-run rate")
slot_s = slots * wall_s
train_s = sum(s["train_s"] for s in summaries)
elapsed_s = sum(s["elapsed_s"] for s in summaries)
process_s = sum((ended[j] - began[j]).total_seconds() for j in ended if j in began)
parts = [("training steps", train_s), ("evaluation, checkpoints, inference figure", elapsed_s - train_s),
         ("job process start and finish", process_s - elapsed_s), ("slots idle", slot_s - process_s)]
print(f"slot-seconds ({slot_s:.1f}): " + ", ".join(f"{name} {s:.1f} ({100 * s / slot_s:.0f}%)" for name, s in parts))
per_slot = tokens / train_s
print(f"training rate per slot while it trains: {per_slot:,.0f} tokens/s ({slots} at once: {slots * per_slot:,.0f}, "
      f"{100 * slots * per_slot / train_rate:.0f}% of one run on every core)")
EOF
