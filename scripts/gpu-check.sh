#!/usr/bin/env bash
# The one-call GPU check, planned to the minute: GPU machines are lent for minutes (one command at
# most 10 minutes), so the stages run in order of value, each with a limit that what is left of
# the budget allows (scripts/gpu_check_plan.py: unit-tested arithmetic), and the report is written
# after every stage, so whatever finishes is in it even if a later stage hangs:
#   smoke            device facts, one CPU-vs-GPU kernel comparison and one training step
#   gpu-tests        every GPU test; a skip counts as a failure here (the GPU was not usable)
#   gpu-bench        training throughput and MFU
#   torch-reference  PyTorch on the same GPU and shapes (bench/torch_reference.py), the anchor
#   inference-bench  generation throughput
#   memcheck, racecheck, synccheck   compute-sanitizer; "not available on this runtime" where the
#                    tool is missing or refuses the device (that is the runtime's, not our failure)
# Stages that do not fit are "skipped for time"; --rerun runs only what was skipped or failed.
#
#   scripts/gpu-check.sh --prepare [ARCH]   on a build machine with the CUDA toolkit (no GPU
#                                           needed): builds the GPU test and benchmarks for ARCH
#                                           (default 90: H100/H200) into build-gpu/, packs them
#                                           with the non-system libraries they need, proves them
#                                           in a clean root (scripts/gpu_bundle.sh) and writes
#                                           build-gpu/bundle.tar.xz (a few tens of MiB), for a
#                                           GPU machine that lacks the project's Debian packages
#   scripts/gpu-check.sh [--budget SECONDS] on the GPU machine (default 540: one 9-minute call):
#                                           unpacks build-gpu/bundle.tar.xz if it is there (or
#                                           builds for the GPU's own architecture where the
#                                           project's dependencies are installed), finds the CUDA
#                                           runtime, cuBLAS(Lt) and NCCL where that machine keeps
#                                           them (the CUDA folders, or Python packages' lib
#                                           folders), runs the stages and writes
#                                           $OUT/gpu-check-report.txt and gpu-check-status.txt
#   scripts/gpu-check.sh --rerun [--budget S]   the stages the last call's status file does not
#                                           list as ok (failed, out of time, skipped for time)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
source "$root/scripts/gpu_bundle.sh"  # gpu_binary_names, gpu_binaries_in, pack, prove, python_library_folders

# build_gpu_binaries ARCH TARGET...: builds the targets (gpu_binary_names) for architecture ARCH
# into build-gpu/.
build_gpu_binaries() {
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DTRAINER_CUDA_ARCHITECTURES="$1" >/dev/null &&
    { grep -q "gpu_bench" build-gpu/build.ninja ||
      { echo "gpu-check: no nvcc found: the CUDA backend would not be built" >&2; return 1; }; } &&
    cmake --build build-gpu --target "${@:2}"
}
export -f build_gpu_binaries

if [[ ${1:-} == --prepare ]]; then
  set -e
  arch=${2:-90}
  build_gpu_binaries "$arch" "${gpu_binary_names[@]}"
  pack build-gpu build-gpu/bundle
  # The bundle's self-test in a clean root (gpu_bundle.sh): a library the GPU machine would miss
  # fails here. 77: this machine cannot make a clean root; the bundle is packed unproven.
  proved=0
  prove build-gpu/bundle || proved=$?
  if ((proved == 77)); then
    echo "gpu-check: WARNING: the bundle could not be proved in a clean root here"
  elif ((proved != 0)); then
    echo "gpu-check: the bundle failed its clean-root self-test (above); not packed" >&2
    exit 1
  fi
  tar -C build-gpu -cJf build-gpu/bundle.tar.xz bundle
  echo "gpu-check: build-gpu/bundle.tar.xz ($(du -h build-gpu/bundle.tar.xz | cut -f1)) for sm_$arch;" \
       "carry build-gpu/bundle.tar.xz and run scripts/gpu-check.sh on the GPU machine"
  exit 0
fi

budget=540 rerun=0
while (($#)); do
  case $1 in
    --budget) budget=${2:?--budget needs seconds}; shift 2 ;;
    --rerun) rerun=1; shift ;;
    *) echo "gpu-check: unknown argument '$1' (--prepare [ARCH] | --budget SECONDS | --rerun)" >&2; exit 2 ;;
  esac
done
[[ $budget =~ ^[0-9]+$ ]] || { echo "gpu-check: --budget '$budget': seconds expected" >&2; exit 2; }
command -v python3 >/dev/null || { echo "gpu-check: python3 is needed for the stage plan" >&2; exit 2; }

[[ -d /usr/local/cuda/bin ]] && export PATH=$PATH:/usr/local/cuda/bin
out=${OUT:-$root}
report=$out/gpu-check-report.txt
status=$out/gpu-check-status.txt  # "stage result" lines; --rerun reads the previous one
previous=""
((rerun)) && [[ -f $status ]] && previous=$(cat "$status")
if ((rerun)); then echo "" >>"$report"; else : >"$report"; fi
: >"$status"
failed=0
say() { echo "$*" | tee -a "$report"; }
record() { echo "$1 $2" >>"$status"; }

# stage NAME COMMAND...: runs it within the limit the plan gives, keeps its output, records the
# result. A classifier (set by the caller in $not_available) turns a tool's own refusal into
# "not available on this runtime".
not_available=""
stage() {
  local name=$1
  shift
  if ((rerun)) && grep -qx "$name ok" <<<"$previous"; then
    say "== $name: ok in the previous call, not rerun"
    record "$name" ok
    return 0
  fi
  local limit
  limit=$(python3 "$root/scripts/gpu_check_plan.py" limit --budget "$budget" --spent "$SECONDS" --stage "$name")
  if ((limit == 0)); then
    say "== $name: SKIPPED FOR TIME ($SECONDS s of the $budget s budget spent; --rerun runs it)"
    record "$name" skipped-for-time
    return 0
  fi
  say ""
  say "== $name (limit ${limit} s): $*"
  local started=$SECONDS
  timeout --kill-after=10 "$limit" "$@" >"$out/$name.log" 2>&1
  local code=$?
  tail -n 60 "$out/$name.log" >>"$report"
  if [[ -n $not_available ]] && grep -qiE "$not_available" "$out/$name.log"; then
    say "== $name: not available on this runtime ($(grep -m1 -iE "$not_available" "$out/$name.log"))"
    record "$name" not-available
  elif ((code == 124 || code == 137)); then
    say "== $name: OUT OF TIME after $((SECONDS - started)) s"
    record "$name" out-of-time
    failed=1
  elif ((code != 0)); then
    say "== $name: FAILED (exit $code) after $((SECONDS - started)) s"
    record "$name" failed
    failed=1
  else
    say "== $name: ok in $((SECONDS - started)) s"
    record "$name" ok
  fi
  return $code
}

# The CUDA runtime, cuBLAS(Lt) and NCCL the binaries need, wherever this machine keeps them: the
# CUDA folders, the system's, or the lib folders of Python packages (NVIDIA's wheels, PyTorch's).
# Each library the loader cannot find is looked up there; the report says which file was used.
find_cuda_libraries() {
  local dirs=(/usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib
              /usr/lib/x86_64-linux-gnu)
  local py
  for py in python3 "${VIRTUAL_ENV:-/nonexistent}/bin/python"; do
    command -v "$py" >/dev/null || continue
    while read -r d; do dirs+=("$d"); done < <(python_library_folders $("$py" -c \
      'import site; print(" ".join(site.getsitepackages() + [site.getusersitepackages()]))' 2>/dev/null))
  done
  local missing name d
  missing=$(for b in "$@"; do ldd "$b" 2>/dev/null; done | awk '/=> not found/ {print $1}' | sort -u)
  # NCCL is not linked but loaded by multi-GPU jobs (parallel/communicator.h): look it up too
  # where the loader would not find it.
  local nccl_found=0
  ldconfig -p 2>/dev/null | grep -q 'libnccl\.so\.2 ' && nccl_found=1
  for d in ${LD_LIBRARY_PATH//:/ }; do [[ -e $d/libnccl.so.2 ]] && nccl_found=1; done
  ((nccl_found)) || missing+=" libnccl.so.2"
  for name in $missing; do
    for d in "${dirs[@]}"; do
      if [[ -e $d/$name ]]; then
        export LD_LIBRARY_PATH=$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
        say "library: $name from $d"
        continue 2
      fi
    done
    say "library: $name NOT FOUND (searched ${dirs[*]})"
  done
  for b in "$@"; do
    ldd "$b" 2>/dev/null | awk '/libcudart|libcublas/ {print "library used: " $1 " => " $3}'
  done | sort -u | tee -a "$report"
}

say "gpu-check $(date -u +%FT%TZ) at $(git rev-parse --short HEAD 2>/dev/null || echo '?'), budget $budget s$( ((rerun)) && echo ', rerun')"
if ! gpus=$(nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader 2>&1); then
  say "gpu-check: FAILED: nvidia-smi finds no GPU here: $gpus"
  exit 1
fi
say "device: $gpus"
say "plan: $(python3 scripts/gpu_check_plan.py plan --budget "$budget" | tr '\n' ';')"
arch=$(echo "$gpus" | head -n 1 | awk -F', ' '{print $2}' | tr -d .)

if [[ -f build-gpu/bundle.tar.xz ]]; then
  if command -v xz >/dev/null; then
    tar -C build-gpu -xJf build-gpu/bundle.tar.xz
  else  # no xz here: Python's lzma reads it
    python3 -c 'import tarfile, sys; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' build-gpu/bundle.tar.xz build-gpu
  fi
  bin=build-gpu/bundle/bin
  export LD_LIBRARY_PATH=$root/build-gpu/bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  [[ -f /usr/share/dictd/gcide.dict.dz ]] || export TEST_CORPUS=$root/build-gpu/bundle/share/gcide.dict.dz
  say "binaries: the prepared bundle (built elsewhere; see --prepare)"
else
  timeout 480 bash -c 'build_gpu_binaries "$@"' _ "$arch" "${gpu_binary_names[@]}" >"$out/build.log" 2>&1 ||
    { tail -n 40 "$out/build.log" >>"$report"; say "gpu-check: FAILED: no bundle and no build"; exit 1; }
  bin=build-gpu/bin-links
  mkdir -p "$bin"
  gpu_binaries_in "$root/build-gpu" | while read -r binary; do ln -sf "$binary" "$bin/"; done
fi
find_cuda_libraries "$bin"/*

# 1. The smoke: one kernel comparison and one whole training step against the CPU, with every
# launch synchronous (CUDA_LAUNCH_BLOCKING), so that a kernel that faults is named at its launch
# rather than at the next synchronisation.
stage smoke env CUDA_LAUNCH_BLOCKING=1 "$bin/gpu_tests" --gtest_filter='CudaVsCpu.GemmInEveryTransposeCombination:CudaVsCpu.WholeTrainingStepMatchesTheCpu'
# 2. The tests: every one must run; only the two-GPU test may skip (one GPU here).
if stage gpu-tests "$bin/gpu_tests" || [[ -f $out/gpu-tests.log ]]; then
  skips=$(grep '^\[  SKIPPED \] [A-Za-z]' "$out/gpu-tests.log" 2>/dev/null | grep -v 'Nccl\.' | sed 's/ (.*//' | sort -u || true)
  if [[ -n $skips ]]; then
    say "gpu-check: FAILED: GPU tests skipped on a GPU machine ($(echo "$skips" | wc -l)), for example:"
    grep -m 1 -B 2 '^\[  SKIPPED \] [A-Za-z]' "$out/gpu-tests.log" | tee -a "$report"
    sed -i 's/^gpu-tests ok$/gpu-tests failed/' "$status"
    failed=1
  fi
fi
# 3. The benchmarks, and PyTorch on the same GPU right after ours.
stage gpu-bench "$bin/gpu_bench"
grep -q 'no CUDA device' "$out/gpu-bench.log" 2>/dev/null && { say "gpu-check: FAILED: gpu_bench found no device"; failed=1; }
if [[ -f bench/torch_reference.py ]]; then
  stage torch-reference python3 bench/torch_reference.py --device cuda
else
  say "== torch-reference: bench/torch_reference.py is not in this tree yet"
  record torch-reference not-available
fi
stage inference-bench "$bin/inference_bench" --backend cuda
# 4. The sanitizers. memcheck leaves out the test that asks cudaMalloc for 16 TiB on purpose (an
# API error by design) and does not report API errors; a tool that is missing or refuses the
# device is "not available on this runtime".
sanitizer=$(command -v compute-sanitizer || true)
not_available='Device not supported|not supported on this|No supported devices|Unable to find injection|compute-sanitizer: not found'
if [[ -z $sanitizer ]]; then
  for name in memcheck racecheck synccheck; do
    say "== $name: not available on this runtime (no compute-sanitizer on PATH or in /usr/local/cuda/bin)"
    record "$name" not-available
  done
else
  stage memcheck "$sanitizer" --tool memcheck --report-api-errors no --error-exitcode 3 "$bin/gpu_tests" \
    --gtest_filter='-Nccl.*:CudaBackend.TrainerRunsAndLearnsOnTheGpu:CudaBackend.OutOfMemory*'
  stage racecheck "$sanitizer" --tool racecheck --error-exitcode 3 "$bin/gpu_tests" --gtest_filter='CudaVsCpu.*'
  stage synccheck "$sanitizer" --tool synccheck --error-exitcode 3 "$bin/gpu_tests" --gtest_filter='CudaVsCpu.*'
fi
not_available=""

say ""
say "== summary ($SECONDS s of the $budget s budget)"
sed 's/^/stage /' "$status" | tee -a "$report"
grep -E '^(XS|S|L|M) ' "$out/gpu-bench.log" >>"$report" 2>/dev/null
grep -E '^torch ' "$out/torch-reference.log" >>"$report" 2>/dev/null
grep -E '^(model|tiny|XS|L)' "$out/inference-bench.log" >>"$report" 2>/dev/null
# The decisions the first run makes: the flash kernel's fate, and where we stand against PyTorch.
source "$root/scripts/gpu_check_verdicts.sh"
gpu_check_verdicts "$out" | tee -a "$report"
if grep -q 'skipped-for-time' "$status"; then say "gpu-check: stages were skipped for time: scripts/gpu-check.sh --rerun runs them"; fi
if ((failed)); then say "gpu-check: FAILED (see the stages above)"; else say "gpu-check: passed (the stages that ran)"; fi
exit $failed
