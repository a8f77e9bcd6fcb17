#!/usr/bin/env bash
# The README's main command: set up, build, then train the tiny preset on the GCIDE corpus with
# AdamW and with Muon and print both final validation losses. Each optimizer runs at its best
# learning rate from a small sweep on this preset (see README): AdamW 3e-3, Muon 1.2e-2.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh >/dev/null
out=runs/demo
mkdir -p "$out"
declare -A lr=([adamw]=3e-3 [muon]=1.2e-2)
for opt in adamw muon; do
  echo "== tiny preset, $opt (lr ${lr[$opt]})"
  build/cli/trainer run examples/tiny_train.yaml --set name=tiny-$opt --set optimizer.name=$opt \
    --set optimizer.lr=${lr[$opt]} --jsonl "$out/$opt.jsonl" --summary "$out/$opt.summary.json"
done
python3 - "$out" <<'PY' 2>/dev/null || grep -h '"final_val_loss"' "$out"/*.summary.json
import json, sys
out = sys.argv[1]
s = {o: json.load(open(f"{out}/{o}.summary.json")) for o in ("adamw", "muon")}
print("\nfinal validation loss (nats/byte) after", s["adamw"]["steps"], "steps:")
for o in ("adamw", "muon"):
    print(f"  {o:6s} {s[o]['final_val_loss']:.4f}  (ppl {s[o]['final_val_ppl']:.2f}, "
          f"{s[o]['tokens_per_second']:.0f} tok/s)")
best = min(s, key=lambda o: s[o]["final_val_loss"])
print(f"  better: {best}")
print(f"metrics: {out}/<optimizer>.jsonl, summaries: {out}/<optimizer>.summary.json")
PY
