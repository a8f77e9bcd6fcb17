#!/usr/bin/env bash
# The one-call GPU check: the GPU tests, the same tests under compute-sanitizer, and the GPU
# benchmarks, in one report file. A GPU is expected wherever this runs: a GPU test that skips
# (no device, or a device that cannot be used, such as a driver older than the build's CUDA
# runtime) is a failure here, as is a benchmark that finds no device.
#
#   scripts/gpu-check.sh --prepare [ARCH]   on a build machine with the CUDA toolkit (no GPU
#                                           needed): builds the GPU test and benchmarks for ARCH
#                                           (default 90: H100/H200) into build-gpu/ and packs them
#                                           with the non-system libraries they need into
#                                           build-gpu/bundle.tar.xz (a few tens of MiB), for a
#                                           GPU machine that lacks the project's Debian packages
#   scripts/gpu-check.sh                    on the GPU machine: unpacks build-gpu/bundle.tar.xz if
#                                           it is there (or builds for the GPU's own architecture
#                                           where the project's dependencies are installed), runs
#                                           everything and writes $OUT/gpu-check-report.txt
#                                           (./gpu-check-report.txt without $OUT)
# Sized for one 10-minute call: GPU tests ~1 min, sanitizers ~4 min (memcheck over every GPU
# test, racecheck and synccheck over the kernel comparisons), benchmarks ~3 min. Each stage has
# its own time limit, and the report says which stage failed or ran out of time.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
gpu_binaries=(build-gpu/tests/gpu_tests build-gpu/bench/gpu_bench build-gpu/bench/inference_bench)

# Builds the GPU test and benchmarks for architecture $1 into build-gpu/.
build_gpu_binaries() {
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DTRAINER_CUDA_ARCHITECTURES="$1" >/dev/null &&
    { grep -q "gpu_bench" build-gpu/build.ninja ||
      { echo "gpu-check: no nvcc found: the CUDA backend would not be built" >&2; return 1; }; } &&
    cmake --build build-gpu --target gpu_tests gpu_bench inference_bench
}
export -f build_gpu_binaries

if [[ ${1:-} == --prepare ]]; then
  set -e
  arch=${2:-90}
  build_gpu_binaries "$arch"
  stage=build-gpu/bundle
  rm -rf "$stage" && mkdir -p "$stage/bin" "$stage/lib"
  cp "${gpu_binaries[@]}" "$stage/bin/"
  # Every shared library the binaries use except the C library's own, the GPU driver and the CUDA
  # libraries, which the GPU machine has in the versions that match its driver.
  for bin in "$stage"/bin/*; do
    ldd "$bin" | awk '/=> \// {print $3}'
  done | sort -u | grep -Ev '/(libc|libm|libdl|libpthread|librt|ld-linux[^/]*|libcuda|libcudart|libcublas[^/]*|libnccl|libnvidia[^/]*)\.so' |
    while read -r lib; do cp -L "$lib" "$stage/lib/"; done
  # The corpus the GPU training test reads (TEST_CORPUS points there on the GPU machine).
  mkdir -p "$stage/share"
  cp /usr/share/dictd/gcide.dict.dz "$stage/share/" 2>/dev/null || true
  tar -C build-gpu -cJf build-gpu/bundle.tar.xz bundle
  echo "gpu-check: build-gpu/bundle.tar.xz ($(du -h build-gpu/bundle.tar.xz | cut -f1)) for sm_$arch;" \
       "carry build-gpu/bundle.tar.xz and run scripts/gpu-check.sh on the GPU machine"
  exit 0
fi

[[ -d /usr/local/cuda/bin ]] && export PATH=$PATH:/usr/local/cuda/bin
out=${OUT:-$root}
report=$out/gpu-check-report.txt
: >"$report"
failed=0
say() { echo "$*" | tee -a "$report"; }
stage() {  # stage NAME SECONDS COMMAND...: runs it with a limit, keeps its output, notes failure
  local name=$1 limit=$2
  shift 2
  say ""
  say "== $name (limit ${limit} s): $*"
  local started=$SECONDS
  timeout --kill-after=10 "$limit" "$@" >"$out/$name.log" 2>&1
  local code=$?
  tail -n 60 "$out/$name.log" >>"$report"
  if ((code == 124 || code == 137)); then
    say "== $name: OUT OF TIME after $((SECONDS - started)) s"
    failed=1
  elif ((code != 0)); then
    say "== $name: FAILED (exit $code) after $((SECONDS - started)) s"
    failed=1
  else
    say "== $name: ok in $((SECONDS - started)) s"
  fi
  return $code
}

say "gpu-check $(date -u +%FT%TZ) at $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
if ! gpus=$(nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader 2>&1); then
  say "gpu-check: FAILED: nvidia-smi finds no GPU here: $gpus"
  exit 1
fi
say "device: $gpus"
arch=$(echo "$gpus" | head -n 1 | awk -F', ' '{print $2}' | tr -d .)

if [[ -f build-gpu/bundle.tar.xz ]]; then
  tar -C build-gpu -xJf build-gpu/bundle.tar.xz
  bin=build-gpu/bundle/bin
  export LD_LIBRARY_PATH=$root/build-gpu/bundle/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
  [[ -f /usr/share/dictd/gcide.dict.dz ]] || export TEST_CORPUS=$root/build-gpu/bundle/share/gcide.dict.dz
  say "binaries: the prepared bundle (built elsewhere; see --prepare)"
else
  stage build 480 bash -c 'build_gpu_binaries "$0"' "$arch" ||
    { say "gpu-check: FAILED: no bundle and no build"; exit 1; }
  bin=build-gpu/bin-links
  mkdir -p "$bin"
  for binary in "${gpu_binaries[@]}"; do ln -sf "$root/$binary" "$bin/"; done
fi

# The tests: every one must run; a skip means the GPU was not usable.
stage gpu-tests 180 "$bin/gpu_tests"
# Only the two-GPU test may skip (one GPU here); any other skip means the GPU was not usable.
skips=$(grep '^\[  SKIPPED \] [A-Za-z]' "$out/gpu-tests.log" | grep -v 'Nccl\.' | sed 's/ (.*//' | sort -u || true)
if [[ -n $skips ]]; then
  say "gpu-check: FAILED: GPU tests skipped on a GPU machine ($(echo "$skips" | wc -l)), for example:"
  grep -m 1 -B 2 '^\[  SKIPPED \] [A-Za-z]' "$out/gpu-tests.log" | tee -a "$report"
  failed=1
fi
if command -v compute-sanitizer >/dev/null; then
  # memcheck over every single-GPU test except the training run (slow under the tool); racecheck
  # (shared memory) and synccheck (barriers) over the kernel comparisons.
  stage memcheck 150 compute-sanitizer --tool memcheck --error-exitcode 3 "$bin/gpu_tests" \
    --gtest_filter='-Nccl.*:CudaBackend.TrainerRunsAndLearnsOnTheGpu'
  stage racecheck 60 compute-sanitizer --tool racecheck --error-exitcode 3 "$bin/gpu_tests" --gtest_filter='CudaVsCpu.*'
  stage synccheck 60 compute-sanitizer --tool synccheck --error-exitcode 3 "$bin/gpu_tests" --gtest_filter='CudaVsCpu.*'
else
  say "gpu-check: compute-sanitizer not found: sanitizers not run"
  failed=1
fi
stage gpu-bench 240 "$bin/gpu_bench"
grep -q 'no CUDA device' "$out/gpu-bench.log" && { say "gpu-check: FAILED: gpu_bench found no device"; failed=1; }
stage inference-bench 150 "$bin/inference_bench" --backend cuda

say ""
say "== summary"
grep -E '^(XS|S|L|M) ' "$out/gpu-bench.log" >>"$report" 2>/dev/null
grep -E '^(model|tiny|XS|L)' "$out/inference-bench.log" >>"$report" 2>/dev/null
if ((failed)); then say "gpu-check: FAILED (see the stages above)"; else say "gpu-check: passed"; fi
exit $failed
