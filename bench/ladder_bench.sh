#!/usr/bin/env bash
# Budget ladders, measured on a real coordinator and CPU worker (2 slots) on 127.0.0.1: a sweep
# with `budgets: {via: cooldown}` and its twin with `via: separate` run one after the other, and
# the bench prints
#   - wall time and tokens trained of each (a fork trains only its steps after the branch),
#   - the cooldown rungs' final val losses against the separate runs' (equal, bit for bit, on CPU),
#   - bytes stored per fork against its trunk's (a fork must not copy the shared prefix),
#   - fork start latency: from the fork's process start to its trainer resumed at the branch step
#     (the trunk's kept checkpoint loaded), from the worker's log.
#   bench/ladder_bench.sh              # a small ladder: 1-layer model, 2 optimizers, 3 budgets
#   bench/ladder_bench.sh --example    # examples/ladder_cpu.yaml and ladder_separate_cpu.yaml
# Run scripts/build.sh first. Prints figures only; it never fails on a figure.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
work=$(mktemp -d /tmp/ladder-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

if [[ "${1:-}" == "--example" ]]; then
  cooldown=examples/ladder_cpu.yaml
  separate=examples/ladder_separate_cpu.yaml
else
  cooldown=$work/ladder.yaml
  cat >"$cooldown" <<EOF
name: ladder-bench
base:
  model: {preset: tiny, n_layer: 1, hidden: 64, n_head: 2, ffn_hidden: 128, seq_len: 64}
  schedule: {kind: wsd, decay_fraction: 0.2}
  training: {batch_tokens: 512, micro_batch: 8, eval_every: 40, eval_tokens: 4096}
  data: {corpus: gcide, max_corpus_bytes: 1000000, cache_dir: .cache/tokens}
grid:
  optimizer: [{name: adamw, lr: 3.0e-3}, {name: muon, lr: 2.4e-2}]
budgets: {tokens: [51200, 102400, 204800], via: cooldown}
targets: [3.0]
EOF
  separate=$work/ladder_separate.yaml
  sed -e 's/via: cooldown/via: separate/' -e 's/^name: ladder-bench/name: ladder-bench-separate/' \
    "$cooldown" >"$separate"
fi

"$build/server/coordinator" --db "$work/sweeps.db" --checkpoint-root "$work/ckpt" \
  --listen 127.0.0.1:0 --http 127.0.0.1:0 --ports-file "$work/ports.json" >"$work/coordinator.log" 2>&1 &
for _ in $(seq 100); do [[ -s "$work/ports.json" ]] && break; sleep 0.2; done
grpc=127.0.0.1:$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["grpc"])' "$work/ports.json")
"$build/worker/worker" --coordinator "$grpc" --worker-id bench --slots 2 --threads-per-job 1 \
  --work-dir "$work/w" >"$work/worker.log" 2>&1 &

run() {  # run FILE: submits it, waits, prints the sweep id and the seconds it took
  local start end id
  start=$(date +%s.%N)
  id=$("$build/cli/sweepctl" --coordinator "$grpc" submit "$1" --watch | sed -n 's/^submitted sweep \([0-9]*\).*/\1/p')
  end=$(date +%s.%N)
  echo "$id $(python3 -c "print(f'{$end - $start:.1f}')")"
}
read -r cooldown_id cooldown_s < <(run "$cooldown")
read -r separate_id separate_s < <(run "$separate")
"$build/cli/sweepctl" --coordinator "$grpc" status "$cooldown_id" --format json >"$work/cooldown.json"
"$build/cli/sweepctl" --coordinator "$grpc" status "$separate_id" --format json >"$work/separate.json"

python3 - "$work" "$cooldown_s" "$separate_s" <<'EOF'
import json, re, sqlite3, sys
from datetime import datetime
work, cooldown_s, separate_s = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
ladder = json.load(open(f"{work}/cooldown.json"))["jobs"]
reference = json.load(open(f"{work}/separate.json"))["jobs"]
def trained(jobs):
    return sum((int(j["max_steps"]) - int((j.get("fork") or {}).get("branch_step", 0))) * int(j["batch_tokens"]) for j in jobs)
print(f"runs: {len(ladder)} rungs per sweep; cooldown ladder {cooldown_s:.1f} s, separate runs {separate_s:.1f} s "
      f"(wall, 2 slots): {cooldown_s / separate_s:.2f}")
print(f"tokens trained: cooldown {trained(ladder):,}, separate {trained(reference):,}: {trained(ladder) / trained(reference):.3f}")
by_rung = {(j["label"], j["seed"]): j for j in reference}
diffs = [abs(j["last_val_loss"] - by_rung[(j["label"], j["seed"])]["last_val_loss"]) for j in ladder]
equal = sum(d == 0 for d in diffs)
print(f"final val loss, cooldown rung vs separate run: {equal}/{len(diffs)} bit-identical, max |difference| {max(diffs):.3g}")
db = sqlite3.connect(f"{work}/sweeps.db")
size = dict(db.execute("SELECT job_id, SUM(LENGTH(points)) FROM series_chunks GROUP BY job_id"))
forks = [j for j in ladder if j.get("fork")]
if forks:
    own = sum(size.get(int(j["job_id"]), 0) for j in forks) / len(forks)
    trunk = sum(size.get(int(j["fork"]["parent_job_id"]), 0) for j in forks) / len(forks)
    alone = sum(size.get(int(by_rung[(j["label"], j["seed"])]["job_id"]), 0) for j in forks) / len(forks)
    print(f"series bytes per fork {own:,.0f} (its own steps), its trunk's {trunk:,.0f}, the separate run of its "
          f"budget {alone:,.0f} (means over {len(forks)} forks)")
stamp = r"\[([0-9-]+ [0-9:.]+)\]"
started, resumed = {}, {}
for line in open(f"{work}/worker.log"):
    m = re.search(stamp + r".* job (\d+) attempt 1 (started|resumed at step)", line)
    if m:
        (started if m.group(3) == "started" else resumed)[m.group(2)] = datetime.fromisoformat(m.group(1))
latency = [(resumed[str(j["job_id"])] - started[str(j["job_id"])]).total_seconds() * 1000
           for j in forks if str(j["job_id"]) in resumed and str(j["job_id"]) in started]
if latency:
    print(f"fork start latency (process start to resumed at its branch step): mean {sum(latency) / len(latency):.0f} ms, "
          f"max {max(latency):.0f} ms over {len(latency)} forks")
EOF
