#!/usr/bin/env bash
# The first GPU run's verdicts, from the logs of scripts/gpu-check.sh (sourced by it; runnable on
# saved logs: scripts/gpu_check_verdicts.sh OUT_DIR):
#   flash    which attention is faster for L at seq 1024 in bf16 (gpu_bench's "mat." and "flash"
#            lines) and whether the fused kernel matched the CPU (the FusedFlashAttention tests):
#            the default (CudaAttention::kMaterialized) changes only when both say so
#   anchor   our tokens/s against PyTorch's for the same preset, sequence and batch
gpu_check_verdicts() {
  local out=$1
  local mat flash matched
  mat=$(awk '$1 == "L" && $3 == 1024 && $6 == "bf16" && $7 == "mat." {print $9}' "$out/gpu-bench.log" 2>/dev/null | head -n1)
  flash=$(awk '$1 == "L" && $3 == 1024 && $6 == "bf16" && $7 == "flash" {print $9}' "$out/gpu-bench.log" 2>/dev/null | head -n1)
  matched=no
  grep -q '^\[       OK \] CudaVsCpu.FusedFlashAttentionForwardAndBackward' "$out/gpu-tests.log" 2>/dev/null &&
    grep -q '^\[       OK \] CudaVsCpu.FusedFlashAttentionInAWholeTrainingStep' "$out/gpu-tests.log" 2>/dev/null &&
    matched=yes
  if [[ -n $mat && -n $flash ]]; then
    local faster=materialized
    awk -v f="$flash" -v m="$mat" 'BEGIN {exit !(f > m)}' && faster=fused
    echo "verdict flash: L seq 1024 bf16: materialized $mat tok/s, fused $flash tok/s ($faster faster); fused matched the CPU: $matched; default should be $([[ $faster == fused && $matched == yes ]] && echo fused || echo materialized)"
  else
    echo "verdict flash: not measured (gpu_bench's L 1024 bf16 lines are missing)"
  fi
  # Ours against PyTorch's, case by case (same preset, sequence and batch): each of our rows for
  # it (fp32, bf16 materialized, bf16 fused), PyTorch's under bf16 autocast.
  local preset seq batch theirs line
  while read -r preset seq batch theirs; do
    while read -r line; do
      [[ -z $line ]] && continue
      set -- $line
      echo "verdict anchor: $preset seq $seq batch $batch: ours ($1 $2) $3 tok/s, PyTorch $theirs tok/s, ratio $(awk -v a="$3" -v b="$theirs" 'BEGIN {printf "%.2f", a / b}')"
    done < <(awk -v p="$preset" -v s="$seq" -v b="$batch" '$1 == p && $3 == s && $5 == b {print $6, $7, $9}' "$out/gpu-bench.log" 2>/dev/null)
  done < <(awk '$1 == "torch" {print $2, $4, $6, $9}' "$out/torch-reference.log" 2>/dev/null)
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then gpu_check_verdicts "${1:?usage: gpu_check_verdicts.sh OUT_DIR}"; fi
