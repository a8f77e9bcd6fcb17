// Launchers of the CUDA backend's kernels (cuda_kernels.cu). Every pointer is device memory;
// every launcher enqueues on `stream` and checks the launch. Semantics match the Backend methods
// of the same name (backend.h), which the CPU backend defines as the reference.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "trainer_core/backend/backend.h"

namespace trainer_core::cuda {

// Deterministic reductions: a fixed grid writes one partial per block, summed in order by the
// caller; kReductionBlocks partials in all.
constexpr int kReductionBlocks = 256;

void fill(float* x, size_t n, float value, cudaStream_t s);
// dst = the bf16 bits of src, rounded to nearest even (__float2bfloat16_rn).
void to_bf16(const float* src, size_t n, uint16_t* dst, cudaStream_t s);
void scale(float* x, size_t n, float alpha, cudaStream_t s);
void axpy(const float* x, float* y, size_t n, float alpha, cudaStream_t s);
void sum_squares_partials(const float* x, size_t n, double* partials, cudaStream_t s);
// x *= numerator / (norm_scale·sqrt(Σ partials) + eps): every block sums the kReductionBlocks
// partials itself (in the same order), so the norm never leaves the device.
void scale_by_partials_norm(float* x, size_t n, const double* partials, double numerator,
                            double norm_scale, double eps, cudaStream_t s);
void transpose(const float* src, int rows, int cols, float* dst, cudaStream_t s);

void embedding_forward(const int32_t* tokens, size_t n, const float* table, int dim, float* out,
                       cudaStream_t s);
void embedding_backward(const int32_t* tokens, size_t n, const float* dout, int dim, float* dtable,
                        cudaStream_t s);
void rmsnorm_forward(const float* x, const float* gain, size_t rows, int dim, float eps, float* out,
                     float* rstd, cudaStream_t s);
void rmsnorm_backward_dx(const float* dout, const float* x, const float* gain, const float* rstd,
                         size_t rows, int dim, float* dx, cudaStream_t s);
void layernorm_forward(const float* x, const float* gain, const float* bias, size_t rows, int dim,
                       float eps, float* out, float* mean, float* rstd, cudaStream_t s);
void layernorm_backward_dx(const float* dout, const float* x, const float* gain, const float* mean,
                           const float* rstd, size_t rows, int dim, float* dx, cudaStream_t s);

// target[c] += Σ_r term(r, c), summed in a fixed order (column partials over kColumnChunks row
// chunks, then the chunks in order). scratch holds kColumnChunks * dim floats.
constexpr int kColumnChunks = 64;
enum class ColumnTerm {
  kDout,              // dout[r,c]
  kDoutXRstd,         // dout[r,c] * x[r,c] * rstd[r]              (RMSNorm gain)
  kDoutXCenteredRstd  // dout[r,c] * (x[r,c] - mean[r]) * rstd[r]  (LayerNorm gain)
};
void accumulate_column_sums(ColumnTerm term, const float* dout, const float* x, const float* mean,
                            const float* rstd, size_t rows, int dim, float* scratch, float* target,
                            cudaStream_t s);

void rope(float* x, int batch, int seq, int heads, int head_dim, int rot_dims,
          const float* cos_table, const float* sin_table, bool inverse, cudaStream_t s);
// In place on (rows, seq) score rows: row r is query position r % seq; keys beyond it are masked.
// In place: scores → causal softmax probabilities; lse[row] = log Σ_j≤i exp(score) (may be null).
void causal_softmax_rows(float* scores, size_t rows, int seq, float* lse, cudaStream_t s);
// In place: scores → exp(score − lse[row]) for j ≤ i, 0 above the diagonal (the backward's P).
void causal_probs_from_lse(float* scores, const float* lse, size_t rows, int seq, cudaStream_t s);
// In place: dP → dS = P ∘ (dP − rowsum(P ∘ dP)) · scale, zero above the diagonal.
void causal_softmax_backward_rows(const float* probs, float* dscores, size_t rows, int seq,
                                  float scale, cudaStream_t s);

void gelu_forward(const float* x, size_t n, float* out, cudaStream_t s);
void gelu_backward(const float* dout, const float* x, size_t n, float* dx, cudaStream_t s);
void swiglu_forward(const float* gate, const float* up, size_t n, float* out, cudaStream_t s);
void swiglu_backward(const float* dout, const float* gate, const float* up, size_t n, float* dgate,
                     float* dup, cudaStream_t s);
void softmax_cross_entropy(float* logits, int ld, const int32_t* targets, size_t rows, int vocab,
                           float* losses, float grad_scale, cudaStream_t s);

void copy_block(const float* src, int ld_src, float* dst, int ld_dst, size_t rows, int cols,
                bool accumulate, cudaStream_t s);
void gather_rows(const float* src, const int32_t* rows, size_t n, int dim, const float* row_scale,
                 float* dst, cudaStream_t s);
void scatter_add_rows(const float* src, const int32_t* rows, size_t n, int dim,
                      const float* row_scale, float* dst, cudaStream_t s);
// MoE routing (Backend::moe_route): choice and gate are (n, top_k) scratch.
void moe_route(const float* logits, size_t n, int experts, int top_k, float* probs, int32_t* choice,
               float* gate, int32_t* slot_token, float* slot_gate, int32_t* token_slot,
               int32_t* expert_offset, float* expert_stats, cudaStream_t s);
void moe_router_backward(const float* dgate, const float* slot_gate, const int32_t* token_slot,
                         const int32_t* expert_offset, const float* probs,
                         const float* expert_stats, size_t n, int experts, int top_k,
                         float aux_scale, float* dlogits, cudaStream_t s);
void scatter_rows(const float* src, const int32_t* rows, size_t n, int dim, float* dst,
                  cudaStream_t s);
void argmax_rows(const float* x, size_t rows, int cols, int32_t* out, cudaStream_t s);
// Shared memory the cached-attention kernel needs for this shape (at most 48 KiB may be asked).
size_t cached_attention_shared_bytes(const CacheShape& shape);
// The dynamic shared memory the kernel may ask for: 48 KiB (no opt-in) less its static arrays.
size_t cached_attention_dynamic_limit();
void cached_attention(const float* q, const float* keys, const float* values, const int32_t* start,
                      const CacheShape& shape, float scale, float* out, cudaStream_t s);
void rowwise_dot(const float* a, const float* b, size_t n, int dim, float* out, cudaStream_t s);

void adamw_step(float* param, const float* grad, float* m, float* v, size_t n, float lr,
                float beta1, float beta2, float eps, float weight_decay, float bc1, float bc2,
                cudaStream_t s);
void adam_moments_update_partials(const float* grad, float* m, float* v, size_t n, float beta1,
                                  float beta2, float eps, float bc1, float bc2, double* partials,
                                  cudaStream_t s);
void momentum_step(const float* grad, float* buf, float* out, size_t n, float mu, bool nesterov,
                   cudaStream_t s);

}  // namespace trainer_core::cuda
