// Fused causal attention on the tensor cores (flash attention, FlashAttention-2's schedule):
// the (seq × seq) scores never reach device memory. Same contract as Backend::attention_forward
// and attention_backward (backend.h): q, k, v, out (batch, seq, heads·head_dim) fp32; lse
// (batch, heads, seq) the log-sum-exp of each query row's scaled scores.
//
// Forward: a block per (64 queries, head, sequence) walks the key tiles up to its diagonal,
// computes S = Q Kᵀ and O += P V with bf16 WMMA fragments (fp32 sums) through shared memory, and
// keeps a running max and sum per row (online softmax). Backward: a block per (64 keys, head,
// sequence) walks the query tiles from its diagonal on, recomputes P from lse, accumulates dK and
// dV in shared memory and adds its share of dQ with atomics (so dQ's last bits depend on the
// order blocks finish). Inputs are rounded to bf16 as the materialized path's GEMMs round them.
//
// Head dims 64 and 128 only, where the device grants the shared memory (flash_attention_supported).
#pragma once

#include <cuda_runtime.h>

#include "trainer_core/backend/backend.h"

namespace trainer_core::cuda {

// Whether the fused kernels run for this head dim on `device` (shared memory per block).
bool flash_attention_supported(int head_dim, int device);

void flash_attention_forward(const float* q, const float* k, const float* v,
                             const AttentionShape& shape, float* lse, float* out, cudaStream_t s);
// row_dot: scratch of batch·heads·seq floats (rowsum(dout ∘ out)). dq is overwritten.
void flash_attention_backward(const float* dout, const float* q, const float* k, const float* v,
                              const float* out, const float* lse, const AttentionShape& shape,
                              float* row_dot, float* dq, float* dk, float* dv, cudaStream_t s);

}  // namespace trainer_core::cuda
