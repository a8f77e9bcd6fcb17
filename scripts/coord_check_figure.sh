#!/usr/bin/env bash
# Regenerates docs/science/coord-check.png and prints the figures behind docs/science.md's
# coordinate-check table: `trainer coord-check` on the tiny preset, muP and standard, AdamW and
# Muon, widths 64 to 512 (about a minute on two cores). Needs a build (scripts/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
files=()
for parametrization in mup standard; do
  for optimizer in adamw muon; do
    lr=3e-3
    [[ $optimizer == muon ]] && lr=1.2e-2
    json="$work/$parametrization-$optimizer.json"
    build/cli/trainer coord-check examples/tiny_train.yaml --widths 64,128,256,512 --steps 5 \
      --seeds 2 --set model.parametrization=$parametrization --set optimizer.name=$optimizer \
      --set optimizer.lr=$lr --set training.micro_batch=4 --set model.seq_len=64 --json "$json"
    files+=("$json")
  done
done
mkdir -p docs/science
node scripts/coord_check_plot.mjs docs/science/coord-check.png "${files[@]}"
