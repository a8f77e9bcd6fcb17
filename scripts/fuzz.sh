#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (clang, AddressSanitizer) into build-fuzz/ and runs each
# for SECONDS (default 60) from seed corpora made of the repository's own examples. Prints each
# target's executions and findings; exits non-zero when a target finds a crash (the input is kept
# under build-fuzz/findings/). CI runs it for a few seconds per target; run it longer by hand:
#   scripts/fuzz.sh 600            # FUZZ_SEED=N fixes libFuzzer's seed (CI uses 1; 0: random)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
dir=${FUZZ_BUILD_DIR:-build-fuzz}
targets=(sweep_spec train_config token_shard bpe checkpoint series_chunk api_query)
if [[ ! -f "$dir/build.ninja" ]]; then
  CC=clang CXX=clang++ cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTRAINER_FUZZ=ON >/dev/null
fi
# thread_safety_checked: the annotated classes compiled with -Werror=thread-safety (clang only).
# Quiet when it builds; on a failure, the build's own words (ninja prints them on stdout).
if ! cmake --build "$dir" -j "$(nproc)" --target "${targets[@]/#/fuzz_}" thread_safety_checked >"$dir/build.log" 2>&1; then
  grep -E -B2 -A12 "FAILED:|error" "$dir/build.log" | head -60 >&2
  echo "fuzz: the fuzz targets do not build (the whole log: $dir/build.log)" >&2
  exit 1
fi

corpus="$dir/corpus"
mkdir -p "$dir/findings" "${targets[@]/#/$corpus/}"
cp examples/*.yaml "$corpus/sweep_spec/"
sed 's/^  # early_stop:/  early_stop:/' examples/tune_lr_cpu.yaml > "$corpus/sweep_spec/tune_early_stop.yaml"
cp examples/*.yaml "$corpus/train_config/"
cp README.md docs/*.md "$corpus/bpe/"
# Seed shards: a valid one and a truncated one.
node -e '
  const fs = require("fs");
  const header = Buffer.alloc(1024);
  header.writeInt32LE(20240520, 0); header.writeInt32LE(1, 4); header.writeInt32LE(16, 8);
  const body = Buffer.alloc(32); for (let i = 0; i < 16; i++) body.writeUInt16LE(i * 1000, 2 * i);
  fs.writeFileSync(process.argv[1] + "/valid.bin", Buffer.concat([header, body]));
  fs.writeFileSync(process.argv[1] + "/truncated.bin", Buffer.concat([header, body.subarray(0, 7)]));
' "$corpus/token_shard"

# A real checkpoint (the target writes it); series chunks and API targets as the dashboard sends them.
FUZZ_CHECKPOINT_SEED_DIR="$corpus/checkpoint" "$dir/fuzz/fuzz_checkpoint" -runs=0 "$corpus/checkpoint" >/dev/null 2>&1
printf '\x01\x03\x00\x0a\x01\x00\x06\x04\x00\x00' >"$corpus/series_chunk/consecutive_tokens"
printf '\x01\x02\x01\x02\x05\x00\x00\x00\x00\x00\x00\x00\x08\x40\x80\x01\x01' >"$corpus/series_chunk/gapped_xor"
for q in '/api/sweeps?limit=50&before=12' '/api/sweeps/3/curves?points=400' '/api/runs/7?points=1000' '/api/sweeps/1/results'; do
  printf '%s' "$q" >"$corpus/api_query/$(printf '%s' "$q" | sha256sum | cut -c1-12)"
done

status=0
for t in "${targets[@]}"; do
  log="$dir/findings/$t.log"
  if "$dir/fuzz/fuzz_$t" -max_total_time="$seconds" -seed="${FUZZ_SEED:-0}" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$dir/findings/$t-" "$corpus/$t" >"$log" 2>&1; then
    result="no crash"
  else
    result="CRASH (see $log and $dir/findings/$t-*)"
    status=1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  printf 'fuzz %-13s %3ss  %10s executions  corpus %4s inputs  %s\n' "$t" "$seconds" "${runs:-?}" \
    "$(ls "$corpus/$t" | wc -l)" "$result"
done
exit $status
