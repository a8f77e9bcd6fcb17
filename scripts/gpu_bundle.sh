#!/usr/bin/env bash
# The GPU bundle: what scripts/gpu-check.sh carries to a GPU machine that lacks the project's
# Debian packages (the GPU test and benchmarks, the libraries they need except the C library and
# CUDA's, and the test corpus), and its proof on the build machine, so that a library the GPU
# machine would miss shows here, not there.
#
#   scripts/gpu_bundle.sh pack BUILD_DIR STAGE_DIR   copies BUILD_DIR's GPU binaries and their
#                                                    non-system libraries into STAGE_DIR
#   scripts/gpu_bundle.sh prove STAGE_DIR            runs STAGE_DIR's CPU-side self-test in a
#                                                    clean root (below); exit 77 where this
#                                                    machine cannot make one (not root and no
#                                                    user namespaces, or no dpkg)
#   scripts/gpu_bundle.sh check BUILD_DIR            packs into a temporary folder and proves
#                                                    it (the ctest gpu_bundle_clean_root)
#
# The clean root holds only Debian's C library (libc6: every GPU image has one, of this version
# or newer), the bundle, and CUDA's runtime and cuBLAS(Lt) where the GPU machine's image keeps
# them: in a Python environment's site-packages/nvidia/cu13/lib, found by the same search
# gpu-check.sh makes there (python_library_folders). No NCCL: single-GPU work must run without
# it (it is loaded only by multi-GPU jobs). The binaries run there with LD_LIBRARY_PATH holding
# only the bundle's lib folder and the folders the search found:
#   gpu_tests                       every test starts and skips (no driver in the root)
#   gpu_bench                       finds no device and says so
#   inference_bench --quick --backend cpu   generates on the CPU with the bundle's BLAS and OpenMP
#                                   (its figures mean nothing there: no /proc, no /sys)
# It also prints the newest C-library symbol version the binaries need: the GPU machine's C
# library must be at least that. gpu-check.sh sources this file for python_library_folders.

gpu_binary_names=(gpu_tests gpu_bench inference_bench)

# python_library_folders SITE_PACKAGES...: the folders where NVIDIA's wheels and PyTorch keep
# CUDA's libraries (nvidia/*/lib, torch/lib) under each site-packages folder that exists.
python_library_folders() {
  local site d
  for site in "$@"; do
    for d in "$site"/nvidia/*/lib "$site/torch/lib"; do
      [[ -d $d ]] && echo "$d"
    done
  done
  return 0
}

# gpu_binaries_in BUILD_DIR: the paths of the GPU binaries built there, one per line; fails
# naming the first that is missing.
gpu_binaries_in() {
  local build=$1 name bin
  for name in "${gpu_binary_names[@]}"; do
    bin=$(find "$build/tests" "$build/bench" -maxdepth 1 -type f -name "$name" | head -n 1)
    [[ -n $bin ]] || { echo "gpu_bundle: no $name under $build (build it first)" >&2; return 1; }
    echo "$bin"
  done
}

# pack BUILD_DIR STAGE_DIR
pack() {
  local build=$1 stage=$2 bin
  local binaries
  binaries=$(gpu_binaries_in "$build") || return 1
  rm -rf "$stage" && mkdir -p "$stage/bin" "$stage/lib" "$stage/share"
  while read -r bin; do cp "$bin" "$stage/bin/"; done <<<"$binaries"
  # Every shared library the binaries use except the C library's own, the GPU driver and the
  # CUDA libraries, which the GPU machine has in the versions that match its driver.
  for bin in "$stage"/bin/*; do
    ldd "$bin" | awk '/=> \// {print $3}'
  done | sort -u | grep -Ev '/(libc|libm|libdl|libpthread|librt|ld-linux[^/]*|libcuda|libcudart|libcublas[^/]*|libnccl|libnvidia[^/]*)\.so' |
    while read -r lib; do cp -L "$lib" "$stage/lib/"; done
  # The corpus the GPU training test reads (gpu-check.sh points TEST_CORPUS there).
  cp /usr/share/dictd/gcide.dict.dz "$stage/share/" 2>/dev/null || true
}

# The CUDA libraries the binaries link, as the loader finds them here.
cuda_libraries_of() {
  for bin in "$@"; do ldd "$bin"; done | awk '/=> \// && /libcudart|libcublas/ {print $3}' | sort -u
}

# prove STAGE_DIR
prove() {
  local stage=$1
  command -v dpkg >/dev/null || { echo "gpu_bundle: no dpkg here: cannot pick Debian's C library for a clean root" >&2; return 77; }
  local enter=("$(PATH=$PATH:/usr/sbin:/sbin command -v chroot)")
  [[ -x ${enter[0]} ]] || { echo "gpu_bundle: no chroot here" >&2; return 77; }
  if ((EUID != 0)); then
    unshare -r true 2>/dev/null || { echo "gpu_bundle: neither root nor user namespaces here: no clean root" >&2; return 77; }
    enter=("$(command -v unshare)" -r "${enter[@]}")
  fi
  local work
  work=$(mktemp -d "${TMPDIR:-/tmp}/gpu-bundle-proof.XXXXXX")
  trap 'rm -rf "$work"' RETURN
  local root=$work/root
  local multiarch=usr/lib/x86_64-linux-gnu site=opt/venv/lib/python3.12/site-packages
  mkdir -p "$root/$multiarch" "$root/lib64" "$root/tmp" "$root/$site/nvidia/cu13/lib"
  ln -s usr/lib "$root/lib"
  ln -s /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$root/lib64/ld-linux-x86-64.so.2"
  # Debian's C library, nothing else of the system.
  dpkg -L libc6 | grep -E '^/(usr/)?lib/x86_64-linux-gnu/[^/]+\.so' | while read -r f; do
    cp -a "$(readlink -f "$f")" "$root/$multiarch/$(basename "$f")"
  done
  # CUDA's runtime and cuBLAS(Lt) in a Python environment's nvidia/cu13/lib, as NVIDIA's CUDA 13
  # wheels lay them out (hard links where the file system allows: cuBLASLt is half a gigabyte).
  local lib
  for lib in $(cuda_libraries_of "$stage"/bin/*); do
    ln "$(readlink -f "$lib")" "$root/$site/nvidia/cu13/lib/$(basename "$lib")" 2>/dev/null ||
      cp "$(readlink -f "$lib")" "$root/$site/nvidia/cu13/lib/$(basename "$lib")"
  done
  cp -a "$stage" "$root/bundle"
  # The library path gpu-check.sh would set there: the bundle's, then what its search finds.
  local path=/bundle/lib folder
  while read -r folder; do path+=":${folder#"$root"}"; done < <(python_library_folders "$root/$site")
  echo "gpu_bundle: clean root with Debian's libc6 ($(dpkg-query -W -f='${Version}' libc6)), the bundle, and CUDA's libraries in /$site/nvidia/cu13/lib; LD_LIBRARY_PATH=$path"
  echo "gpu_bundle: the GPU machine's C library must be glibc $(for b in "$stage"/bin/*; do objdump -T "$b"; done |
    grep -oE 'GLIBC_[0-9.]+' | sort -uV | tail -n 1 | cut -d_ -f2) or newer"

  # in_root COMMAND...: runs COMMAND in the clean root with nothing of this environment but the
  # library path; prints its output, and returns its exit status.
  in_root() {
    env -i LD_LIBRARY_PATH="$path" HOME=/tmp OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE \
      "${enter[@]}" "$root" "$@" 2>&1
  }
  local failures=0 out
  # fail WHAT: counts a failure and shows the output that says why.
  fail() {
    echo "gpu_bundle: FAILED in the clean root: $1:"
    tail -n 20 <<<"$out"
    failures=$((failures + 1))
  }
  if out=$(in_root /bundle/bin/gpu_tests); then
    local ran skipped
    ran=$(grep -oE '^\[==========\] [0-9]+ tests? from' <<<"$out" | grep -oE '[0-9]+' | tail -n 1)
    skipped=$(grep -E '^\[  SKIPPED \] [A-Za-z]' <<<"$out" | sed 's/ (.*//' | sort -u | wc -l)
    if [[ ${ran:-0} -gt 0 ]]; then
      echo "gpu_bundle: gpu_tests started in the clean root: $ran tests, $skipped skipped for want of a GPU"
    else
      fail "gpu_tests ran no test"
    fi
  else
    fail "gpu_tests exited with $?"
  fi
  if out=$(in_root /bundle/bin/gpu_bench) && grep -q 'no CUDA device' <<<"$out"; then
    echo "gpu_bundle: gpu_bench started in the clean root: $(tail -n 1 <<<"$out")"
  else
    fail "gpu_bench did not start and report the missing device"
  fi
  if out=$(in_root /bundle/bin/inference_bench --quick --backend cpu) && grep -q '^tiny-moe-mla ' <<<"$out"; then
    echo "gpu_bundle: inference_bench generated on the CPU in the clean root:"
    grep -E '^(model|tiny)' <<<"$out"
  else
    fail "inference_bench did not generate on the CPU"
  fi
  if ((failures)); then
    echo "gpu_bundle: the bundle is NOT ready for a GPU machine ($failures failures above)"
    return 1
  fi
  echo "gpu_bundle: the bundle runs in a clean root"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -euo pipefail
  case ${1:-} in
    pack) pack "${2:?pack BUILD_DIR STAGE_DIR}" "${3:?pack BUILD_DIR STAGE_DIR}" ;;
    prove) prove "${2:?prove STAGE_DIR}" ;;
    check)
      staging=$(mktemp -d "${TMPDIR:-/tmp}/gpu-bundle.XXXXXX")
      trap 'rm -rf "$staging"' EXIT
      pack "${2:?check BUILD_DIR}" "$staging/bundle"
      prove "$staging/bundle"
      ;;
    *) echo "usage: $0 pack BUILD_DIR STAGE_DIR | prove STAGE_DIR | check BUILD_DIR" >&2; exit 2 ;;
  esac
fi
