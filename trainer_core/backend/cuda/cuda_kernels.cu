// The CUDA backend's kernels. fp32 in and out (the GEMMs, in cuda_backend.cpp, run in bf16 on the
// tensor cores); accurate expf/tanhf rather than the CPU's fast approximations, so the two backends
// agree to ~1e-6 relative on these ops and the tests' tolerances are set by the bf16 GEMMs.
//
// Shapes: one thread per element for elementwise ops (grid-stride loops), one block per row for
// row reductions (norms, cross-entropy), one warp per row for attention rows and row dots.
#include <cuda_bf16.h>

#include <cfloat>

#include "trainer_core/backend/cuda/cuda_check.h"
#include "trainer_core/backend/cuda/cuda_kernels.h"

namespace trainer_core::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarp = 32;
constexpr float kGeluK = 0.7978845608028654f;  // sqrt(2/pi)
constexpr float kGeluC = 0.044715f;

unsigned blocks_for(size_t n, int threads = kThreads) {
  const size_t b = (n + threads - 1) / threads;
  return unsigned(b < 65535 * 16 ? (b > 0 ? b : 1) : 65535 * 16);  // grid-stride covers the rest
}

#define GRID_STRIDE(i, n)                                                 \
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < (n); \
       i += size_t(gridDim.x) * blockDim.x)

template <typename T>
__device__ T warp_sum(T v) {
  for (int o = kWarp / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ float warp_max(float v) {
  for (int o = kWarp / 2; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block, result valid in every thread. `shared` holds kThreads / 32 values.
template <typename T>
__device__ T block_sum(T v, T* shared) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  v = warp_sum(v);
  __syncthreads();  // `shared` may still be read from a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  T total = 0;
  for (int w = 0; w < int(blockDim.x / kWarp); ++w) total += shared[w];
  return total;
}
__device__ float block_max(float v, float* shared) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  float m = -FLT_MAX;
  for (int w = 0; w < int(blockDim.x / kWarp); ++w) m = fmaxf(m, shared[w]);
  return m;
}
// ---- elementwise
__global__ void fill_kernel(float* x, size_t n, float value) { GRID_STRIDE(i, n) x[i] = value; }
__global__ void to_bf16_kernel(const float* src, size_t n, __nv_bfloat16* dst) {
  GRID_STRIDE(i, n) dst[i] = __float2bfloat16_rn(src[i]);
}
__global__ void scale_kernel(float* x, size_t n, float alpha) { GRID_STRIDE(i, n) x[i] *= alpha; }
__global__ void axpy_kernel(const float* x, float* y, size_t n, float alpha) {
  GRID_STRIDE(i, n) y[i] += alpha * x[i];
}

__global__ void sum_squares_kernel(const float* x, size_t n, double* partials) {
  __shared__ double shared[kThreads / kWarp];
  double acc = 0;
  GRID_STRIDE(i, n) acc += double(x[i]) * x[i];
  acc = block_sum(acc, shared);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

__global__ void scale_by_partials_norm_kernel(float* x, size_t n, const double* partials,
                                              double numerator, double norm_scale, double eps) {
  __shared__ double shared[kThreads / kWarp];
  __shared__ float factor;
  double acc = 0;
  for (int i = threadIdx.x; i < kReductionBlocks; i += blockDim.x) acc += partials[i];
  acc = block_sum(acc, shared);
  if (threadIdx.x == 0) factor = float(numerator / (norm_scale * sqrt(acc) + eps));
  __syncthreads();
  GRID_STRIDE(i, n) x[i] *= factor;
}

constexpr int kTile = 32;
__global__ void transpose_kernel(const float* src, int rows, int cols, float* dst) {
  __shared__ float tile[kTile][kTile + 1];  // +1: no bank conflicts on the transposed read
  const int c = blockIdx.x * kTile + threadIdx.x;
  for (int dy = threadIdx.y; dy < kTile; dy += blockDim.y) {
    const int r = blockIdx.y * kTile + dy;
    if (r < rows && c < cols) tile[dy][threadIdx.x] = src[size_t(r) * cols + c];
  }
  __syncthreads();
  const int r = blockIdx.y * kTile + threadIdx.x;
  for (int dy = threadIdx.y; dy < kTile; dy += blockDim.y) {
    const int cc = blockIdx.x * kTile + dy;
    if (r < rows && cc < cols) dst[size_t(cc) * rows + r] = tile[threadIdx.x][dy];
  }
}

// ---- embedding
__global__ void embedding_forward_kernel(const int32_t* tokens, size_t n, const float* table,
                                         int dim, float* out) {
  GRID_STRIDE(i, n * dim) {
    const size_t t = i / dim, d = i % dim;
    out[i] = table[size_t(tokens[t]) * dim + d];
  }
}
// Atomic adds: tokens repeat. Summation order varies between runs (last-bit differences only).
__global__ void embedding_backward_kernel(const int32_t* tokens, size_t n, const float* dout,
                                          int dim, float* dtable) {
  GRID_STRIDE(i, n * dim) {
    const size_t t = i / dim, d = i % dim;
    atomicAdd(dtable + size_t(tokens[t]) * dim + d, dout[i]);
  }
}

// ---- norms: one block per row
__global__ void rmsnorm_forward_kernel(const float* x, const float* gain, int dim, float eps,
                                       float* out, float* rstd) {
  __shared__ float shared[kThreads / kWarp];
  const size_t r = blockIdx.x;
  const float* xr = x + r * dim;
  float ss = 0;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) ss += xr[i] * xr[i];
  ss = block_sum(ss, shared);
  const float s = rsqrtf(ss / dim + eps);
  if (threadIdx.x == 0) rstd[r] = s;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) out[r * dim + i] = xr[i] * s * gain[i];
}
__global__ void rmsnorm_backward_dx_kernel(const float* dout, const float* x, const float* gain,
                                           const float* rstd, int dim, float* dx) {
  __shared__ float shared[kThreads / kWarp];
  const size_t r = blockIdx.x;
  const float *xr = x + r * dim, *dy = dout + r * dim;
  const float s = rstd[r];
  float dot = 0;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) dot += gain[i] * dy[i] * xr[i];
  dot = block_sum(dot, shared);
  const float k = dot * s * s * s / dim;
  for (int i = threadIdx.x; i < dim; i += blockDim.x)
    dx[r * dim + i] += s * gain[i] * dy[i] - k * xr[i];
}
__global__ void layernorm_forward_kernel(const float* x, const float* gain, const float* bias,
                                         int dim, float eps, float* out, float* mean, float* rstd) {
  __shared__ float shared[kThreads / kWarp];
  const size_t r = blockIdx.x;
  const float* xr = x + r * dim;
  float sum = 0;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) sum += xr[i];
  const float mu = block_sum(sum, shared) / dim;
  float var = 0;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) var += (xr[i] - mu) * (xr[i] - mu);
  const float s = rsqrtf(block_sum(var, shared) / dim + eps);
  if (threadIdx.x == 0) {
    mean[r] = mu;
    rstd[r] = s;
  }
  for (int i = threadIdx.x; i < dim; i += blockDim.x)
    out[r * dim + i] = (xr[i] - mu) * s * gain[i] + bias[i];
}
__global__ void layernorm_backward_dx_kernel(const float* dout, const float* x, const float* gain,
                                             const float* mean, const float* rstd, int dim,
                                             float* dx) {
  __shared__ float shared[kThreads / kWarp];
  const size_t r = blockIdx.x;
  const float *xr = x + r * dim, *dy = dout + r * dim;
  const float mu = mean[r], s = rstd[r];
  float a = 0, b = 0;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) {
    const float gdy = gain[i] * dy[i];
    a += gdy;
    b += gdy * (xr[i] - mu) * s;
  }
  const float mean_gdy = block_sum(a, shared) / dim;
  const float mean_gdy_xhat = block_sum(b, shared) / dim;
  for (int i = threadIdx.x; i < dim; i += blockDim.x)
    dx[r * dim + i] += s * (gain[i] * dy[i] - mean_gdy - (xr[i] - mu) * s * mean_gdy_xhat);
}

__device__ float column_term(ColumnTerm term, const float* dout, const float* x, const float* mean,
                             const float* rstd, size_t r, int dim, int c) {
  const size_t i = r * dim + c;
  switch (term) {
    case ColumnTerm::kDout:
      return dout[i];
    case ColumnTerm::kDoutXRstd:
      return dout[i] * x[i] * rstd[r];
    default:
      return dout[i] * (x[i] - mean[r]) * rstd[r];
  }
}
// grid (ceil(dim / kThreads), kColumnChunks): chunk y of the rows, column per thread (coalesced).
__global__ void column_partials_kernel(ColumnTerm term, const float* dout, const float* x,
                                       const float* mean, const float* rstd, size_t rows, int dim,
                                       float* scratch) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= dim) return;
  const size_t begin = rows * blockIdx.y / kColumnChunks,
               end = rows * (blockIdx.y + 1) / kColumnChunks;
  float acc = 0;
  for (size_t r = begin; r < end; ++r) acc += column_term(term, dout, x, mean, rstd, r, dim, c);
  scratch[size_t(blockIdx.y) * dim + c] = acc;
}
__global__ void column_finish_kernel(const float* scratch, int dim, float* target) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= dim) return;
  float acc = 0;
  for (int k = 0; k < kColumnChunks; ++k) acc += scratch[size_t(k) * dim + c];
  target[c] += acc;
}

// ---- rotary embedding: one thread per rotated pair
__global__ void rope_kernel(float* x, int batch, int seq, int heads, int head_dim, int half,
                            const float* cos_table, const float* sin_table, float sign) {
  const size_t n = size_t(batch) * seq * heads * half;
  GRID_STRIDE(idx, n) {
    const int i = int(idx % half);
    const size_t h = (idx / half) % heads, bt = idx / (size_t(half) * heads);
    const int t = int(bt % seq);
    float* v = x + bt * size_t(heads) * head_dim + h * head_dim;
    const float c = cos_table[size_t(t) * half + i], sn = sign * sin_table[size_t(t) * half + i];
    const float x1 = v[i], x2 = v[i + half];
    v[i] = x1 * c - x2 * sn;
    v[i + half] = x1 * sn + x2 * c;
  }
}

// ---- attention rows: one warp per (batch, head, query) row of `seq` keys
__global__ void causal_softmax_kernel(float* scores, size_t rows, int seq, float* lse) {
  const size_t row = (blockIdx.x * size_t(blockDim.x) + threadIdx.x) / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (row >= rows) return;
  const int q = int(row % seq);
  float* p = scores + row * seq;
  float mx = -FLT_MAX;
  for (int j = lane; j <= q; j += kWarp) mx = fmaxf(mx, p[j]);
  mx = warp_max(mx);
  float sum = 0;
  for (int j = lane; j <= q; j += kWarp) {
    const float e = expf(p[j] - mx);
    p[j] = e;
    sum += e;
  }
  const float total = warp_sum(sum);
  const float inv = 1.0f / total;
  for (int j = lane; j < seq; j += kWarp) p[j] = j <= q ? p[j] * inv : 0.0f;
  if (lse && lane == 0) lse[row] = mx + logf(total);
}
__global__ void causal_probs_from_lse_kernel(float* scores, const float* lse, size_t rows,
                                             int seq) {
  const size_t row = (blockIdx.x * size_t(blockDim.x) + threadIdx.x) / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (row >= rows) return;
  const int q = int(row % seq);
  float* p = scores + row * seq;
  const float l = lse[row];
  for (int j = lane; j < seq; j += kWarp) p[j] = j <= q ? expf(p[j] - l) : 0.0f;
}
__global__ void causal_softmax_backward_kernel(const float* probs, float* ds, size_t rows, int seq,
                                               float scale) {
  const size_t row = (blockIdx.x * size_t(blockDim.x) + threadIdx.x) / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (row >= rows) return;
  const int q = int(row % seq);
  const float* p = probs + row * seq;
  float* d = ds + row * seq;
  float dot = 0;
  for (int j = lane; j <= q; j += kWarp) dot += p[j] * d[j];
  dot = warp_sum(dot);
  for (int j = lane; j < seq; j += kWarp) d[j] = j <= q ? p[j] * (d[j] - dot) * scale : 0.0f;
}

// ---- MoE routing, on the device
// One thread per token: the softmax, its top_k experts (largest logits, ties to the lower index)
// and their gates (the softmax of the chosen logits).
__global__ void moe_topk_kernel(const float* logits, size_t n, int E, int K, float* probs,
                                int32_t* choice, float* gate) {
  GRID_STRIDE(t, n) {
    const float* row = logits + t * E;
    float mx = row[0];
    for (int e = 1; e < E; ++e) mx = fmaxf(mx, row[e]);
    double sum = 0;
    for (int e = 0; e < E; ++e) sum += exp(double(row[e] - mx));
    for (int e = 0; e < E; ++e) probs[t * E + e] = float(exp(double(row[e] - mx)) / sum);
    int32_t* mine = choice + t * K;
    for (int k = 0; k < K; ++k) {
      int best = -1;
      for (int e = 0; e < E; ++e) {
        bool taken = false;
        for (int j = 0; j < k; ++j) taken = taken || mine[j] == e;
        if (!taken && (best < 0 || row[e] > row[best])) best = e;
      }
      mine[k] = best;
    }
    double gsum = 0;
    for (int k = 0; k < K; ++k) gsum += exp(double(row[mine[k]] - row[mine[0]]));
    for (int k = 0; k < K; ++k)
      gate[t * K + k] = float(exp(double(row[mine[k]] - row[mine[0]])) / gsum);
  }
}
// One block: per expert its slot count, offset, share and mean probability, then its slots in
// token order (each expert's thread scans the choices in order: deterministic, no atomics).
__global__ void moe_group_kernel(const int32_t* choice, const float* gate, const float* probs,
                                 size_t n, int E, int K, int32_t* slot_token, float* slot_gate,
                                 int32_t* token_slot, int32_t* expert_offset, float* expert_stats) {
  const size_t slots = n * size_t(K);
  for (int e = threadIdx.x; e < E; e += blockDim.x) {
    int32_t count = 0;
    for (size_t i = 0; i < slots; ++i) count += choice[i] == e;
    expert_offset[e + 1] = count;
    double mean_p = 0;
    for (size_t t = 0; t < n; ++t) mean_p += probs[t * E + e];
    expert_stats[e] = float(double(count) / double(slots));
    expert_stats[E + e] = float(mean_p / double(n));
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    expert_offset[0] = 0;
    for (int e = 0; e < E; ++e) expert_offset[e + 1] += expert_offset[e];
  }
  __syncthreads();
  for (int e = threadIdx.x; e < E; e += blockDim.x) {
    int32_t s = expert_offset[e];
    for (size_t i = 0; i < slots; ++i)
      if (choice[i] == e) {
        slot_token[s] = int32_t(i / K);
        slot_gate[s] = gate[i];
        token_slot[i] = s++;
      }
  }
}
// One thread per token: the router's gradient through the gates and the balance loss.
__global__ void moe_router_backward_kernel(const float* dgate, const float* slot_gate,
                                           const int32_t* token_slot, const int32_t* expert_offset,
                                           const float* probs, const float* expert_stats, size_t n,
                                           int E, int K, float aux_scale, float* dlogits) {
  GRID_STRIDE(t, n) {
    float* d = dlogits + t * E;
    for (int e = 0; e < E; ++e) d[e] = 0.0f;
    double weighted = 0;
    for (int k = 0; k < K; ++k) {
      const int32_t s = token_slot[t * K + k];
      weighted += double(slot_gate[s]) * dgate[s];
    }
    for (int k = 0; k < K; ++k) {
      const int32_t s = token_slot[t * K + k];
      int e = 0;
      while (expert_offset[e + 1] <= s) ++e;
      d[e] += float(slot_gate[s] * (dgate[s] - weighted));
    }
    const float* pr = probs + t * E;
    double dot = 0;
    for (int i = 0; i < E; ++i) dot += double(pr[i]) * aux_scale * expert_stats[i];
    for (int j = 0; j < E; ++j) d[j] += float(pr[j] * (aux_scale * expert_stats[j] - dot));
  }
}

// ---- activations
__global__ void gelu_forward_kernel(const float* x, size_t n, float* out) {
  GRID_STRIDE(i, n) {
    const float u = x[i];
    out[i] = 0.5f * u * (1.0f + tanhf(kGeluK * (u + kGeluC * u * u * u)));
  }
}
__global__ void gelu_backward_kernel(const float* dout, const float* x, size_t n, float* dx) {
  GRID_STRIDE(i, n) {
    const float u = x[i];
    const float t = tanhf(kGeluK * (u + kGeluC * u * u * u));
    const float dt = (1.0f - t * t) * kGeluK * (1.0f + 3.0f * kGeluC * u * u);
    dx[i] = dout[i] * (0.5f * (1.0f + t) + 0.5f * u * dt);
  }
}
__device__ float sigmoid(float g) { return 1.0f / (1.0f + expf(-g)); }
__global__ void swiglu_forward_kernel(const float* gate, const float* up, size_t n, float* out) {
  GRID_STRIDE(i, n) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
}
__global__ void swiglu_backward_kernel(const float* dout, const float* gate, const float* up,
                                       size_t n, float* dgate, float* dup) {
  GRID_STRIDE(i, n) {
    const float g = gate[i], sg = sigmoid(g);
    dup[i] = dout[i] * g * sg;
    dgate[i] = dout[i] * up[i] * sg * (1.0f + g * (1.0f - sg));
  }
}

// ---- fused softmax cross-entropy: one block per row; one pass for max and sum (online softmax),
// one pass writing the gradient in place of the logits.
__global__ void softmax_cross_entropy_kernel(float* logits, int ld, const int32_t* targets,
                                             int vocab, float* losses, float grad_scale) {
  __shared__ float shared_m[kThreads / kWarp], shared_s[kThreads / kWarp];
  const size_t r = blockIdx.x;
  float* row = logits + r * size_t(ld);
  float m = -FLT_MAX, s = 0;
  for (int j = threadIdx.x; j < vocab; j += blockDim.x) {
    const float v = row[j];
    if (v > m) {
      s = s * expf(m - v) + 1.0f;
      m = v;
    } else {
      s += expf(v - m);
    }
  }
  // Combine (m, s) pairs: first the warp, then the block.
  for (int o = kWarp / 2; o > 0; o /= 2) {
    const float m2 = __shfl_xor_sync(0xffffffffu, m, o), s2 = __shfl_xor_sync(0xffffffffu, s, o);
    const float mx = fmaxf(m, m2);
    s = (m == -FLT_MAX ? 0.0f : s * expf(m - mx)) + (m2 == -FLT_MAX ? 0.0f : s2 * expf(m2 - mx));
    m = mx;
  }
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  if (lane == 0) {
    shared_m[warp] = m;
    shared_s[warp] = s;
  }
  __syncthreads();
  float mx = -FLT_MAX;
  for (int w = 0; w < int(blockDim.x / kWarp); ++w) mx = fmaxf(mx, shared_m[w]);
  float sum = 0;
  for (int w = 0; w < int(blockDim.x / kWarp); ++w)
    if (shared_m[w] != -FLT_MAX) sum += shared_s[w] * expf(shared_m[w] - mx);
  const int target = targets[r];
  const float target_logit = row[target];
  __syncthreads();  // every thread has read row[target] before it is overwritten
  if (threadIdx.x == 0) losses[r] = logf(sum) + mx - target_logit;
  if (grad_scale != 0.0f) {
    const float k = grad_scale / sum;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x)
      row[j] = expf(row[j] - mx) * k - (j == target ? grad_scale : 0.0f);
  }
}

// ---- layout and routing
__global__ void copy_block_kernel(const float* src, int ld_src, float* dst, int ld_dst, size_t rows,
                                  int cols, bool accumulate) {
  GRID_STRIDE(i, rows * cols) {
    const size_t r = i / cols, c = i % cols;
    const float v = src[r * ld_src + c];
    float& d = dst[r * ld_dst + c];
    d = accumulate ? d + v : v;
  }
}
__global__ void gather_rows_kernel(const float* src, const int32_t* rows, size_t n, int dim,
                                   const float* row_scale, float* dst) {
  GRID_STRIDE(i, n * dim) {
    const size_t r = i / dim, c = i % dim;
    dst[i] = (row_scale ? row_scale[r] : 1.0f) * src[size_t(rows[r]) * dim + c];
  }
}
// Atomic adds: rows repeat (a token routed to two experts). Order varies: last-bit differences.
__global__ void scatter_add_rows_kernel(const float* src, const int32_t* rows, size_t n, int dim,
                                        const float* row_scale, float* dst) {
  GRID_STRIDE(i, n * dim) {
    const size_t r = i / dim, c = i % dim;
    atomicAdd(dst + size_t(rows[r]) * dim + c, (row_scale ? row_scale[r] : 1.0f) * src[i]);
  }
}
__global__ void scatter_rows_kernel(const float* src, const int32_t* rows, size_t n, int dim,
                                    float* dst) {
  GRID_STRIDE(i, n * dim) {
    const size_t r = i / dim, c = i % dim;
    dst[size_t(rows[r]) * dim + c] = src[i];
  }
}
// One block per row; ties go to the lower index, as on the CPU.
__global__ void argmax_rows_kernel(const float* x, int cols, int32_t* out) {
  __shared__ float best_value[kThreads];
  __shared__ int best_index[kThreads];
  const float* row = x + size_t(blockIdx.x) * cols;
  float bv = -FLT_MAX;
  int bi = cols;
  for (int c = threadIdx.x; c < cols; c += blockDim.x)
    if (row[c] > bv || (row[c] == bv && c < bi)) bv = row[c], bi = c;
  best_value[threadIdx.x] = bv;
  best_index[threadIdx.x] = bi;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (int(threadIdx.x) < half) {
      const float ov = best_value[threadIdx.x + half];
      const int oi = best_index[threadIdx.x + half];
      if (ov > best_value[threadIdx.x] ||
          (ov == best_value[threadIdx.x] && oi < best_index[threadIdx.x])) {
        best_value[threadIdx.x] = ov;
        best_index[threadIdx.x] = oi;
      }
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = best_index[0] < cols ? best_index[0] : 0;
}

// Attention against a cache (Backend::cached_attention): one block per (query row, head). Keys
// are visited in tiles of kCacheTile with an online softmax, so any cache length fits; shared
// memory holds the query, one tile of scores and the output accumulator.
constexpr int kCacheTile = 1024;
__global__ void cached_attention_kernel(const float* q, const float* keys, const float* values,
                                        const int32_t* start, CacheShape sh, float scale,
                                        float* out) {
  extern __shared__ float smem[];
  __shared__ float reduce[kThreads / kWarp];
  float* qs = smem;
  float* score = qs + sh.qk_dim;
  float* acc = score + kCacheTile;
  const int h = blockIdx.y, row = blockIdx.x, b = row / sh.tokens, t = row % sh.tokens;
  const int g = h / (sh.heads / sh.kv_heads), visible = start[b] + t + 1;
  const float* qh = q + (size_t(row) * sh.heads + h) * sh.qk_dim;
  for (int i = threadIdx.x; i < sh.qk_dim; i += blockDim.x) qs[i] = qh[i];
  for (int i = threadIdx.x; i < sh.v_dim; i += blockDim.x) acc[i] = 0.0f;
  const size_t base = size_t(b) * sh.capacity;
  float m = -FLT_MAX, l = 0.0f;
  __syncthreads();
  for (int s0 = 0; s0 < visible; s0 += kCacheTile) {
    const int n = min(kCacheTile, visible - s0);
    float local_max = -FLT_MAX;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
      const float* kj = keys + (base + s0 + j) * sh.key_stride + size_t(g) * sh.qk_dim;
      float dot = 0.0f;
      for (int i = 0; i < sh.qk_dim; ++i) dot += qs[i] * kj[i];
      score[j] = dot * scale;
      local_max = fmaxf(local_max, score[j]);
    }
    const float m_new = fmaxf(m, block_max(local_max, reduce));
    float local_sum = 0.0f;
    for (int j = threadIdx.x; j < n; j += blockDim.x)
      local_sum += (score[j] = expf(score[j] - m_new));
    const float carry = expf(m - m_new);           // 0 on the first tile
    l = l * carry + block_sum(local_sum, reduce);  // its barrier publishes the scores
    for (int i = threadIdx.x; i < sh.v_dim; i += blockDim.x) {
      float a = acc[i] * carry;
      for (int j = 0; j < n; ++j)
        a += score[j] * values[(base + s0 + j) * sh.value_stride + size_t(g) * sh.v_dim + i];
      acc[i] = a;
    }
    m = m_new;
    __syncthreads();  // the next tile overwrites the scores
  }
  float* o = out + (size_t(row) * sh.heads + h) * sh.v_dim;
  for (int i = threadIdx.x; i < sh.v_dim; i += blockDim.x) o[i] = acc[i] / l;
}

__global__ void rowwise_dot_kernel(const float* a, const float* b, size_t n, int dim, float* out) {
  const size_t row = (blockIdx.x * size_t(blockDim.x) + threadIdx.x) / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (row >= n) return;
  float acc = 0;
  for (int c = lane; c < dim; c += kWarp) acc += a[row * dim + c] * b[row * dim + c];
  acc = warp_sum(acc);
  if (lane == 0) out[row] = acc;
}

// ---- optimizers (fp32 state)
// Updates the moments in place; returns the bias-corrected Adam direction m̂ / (√v̂ + ε).
__device__ float adam_moments_update(float g, float& m, float& v, float beta1, float beta2,
                                     float eps, float bc1, float bc2) {
  m = beta1 * m + (1.0f - beta1) * g;
  v = beta2 * v + (1.0f - beta2) * g * g;
  return (m / bc1) / (sqrtf(v / bc2) + eps);
}
__global__ void adamw_kernel(float* param, const float* grad, float* m, float* v, size_t n,
                             float lr, float beta1, float beta2, float eps, float wd, float bc1,
                             float bc2) {
  GRID_STRIDE(i, n) {
    const float update = adam_moments_update(grad[i], m[i], v[i], beta1, beta2, eps, bc1, bc2);
    param[i] -= lr * (update + wd * param[i]);
  }
}
__global__ void adam_moments_kernel(const float* grad, float* m, float* v, size_t n, float beta1,
                                    float beta2, float eps, float bc1, float bc2,
                                    double* partials) {
  __shared__ double shared[kThreads / kWarp];
  double acc = 0;
  GRID_STRIDE(i, n) {
    const double u = adam_moments_update(grad[i], m[i], v[i], beta1, beta2, eps, bc1, bc2);
    acc += u * u;
  }
  acc = block_sum(acc, shared);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}
__global__ void momentum_kernel(const float* grad, float* buf, float* out, size_t n, float mu,
                                bool nesterov) {
  GRID_STRIDE(i, n) {
    const float b = mu * buf[i] + grad[i];
    buf[i] = b;
    out[i] = nesterov ? grad[i] + mu * b : b;
  }
}

unsigned warp_rows_blocks(size_t rows) {
  return unsigned((rows * kWarp + kThreads - 1) / kThreads);
}

}  // namespace

#define LAUNCH(kernel, grid, block, stream, ...)           \
  do {                                                     \
    kernel<<<(grid), (block), 0, (stream)>>>(__VA_ARGS__); \
    TC_CUDA_CHECK_LAUNCH();                                \
  } while (0)

void fill(float* x, size_t n, float value, cudaStream_t s) {
  LAUNCH(fill_kernel, blocks_for(n), kThreads, s, x, n, value);
}
void to_bf16(const float* src, size_t n, uint16_t* dst, cudaStream_t s) {
  if (n)
    LAUNCH(to_bf16_kernel, blocks_for(n), kThreads, s, src, n,
           reinterpret_cast<__nv_bfloat16*>(dst));
}
void scale(float* x, size_t n, float alpha, cudaStream_t s) {
  LAUNCH(scale_kernel, blocks_for(n), kThreads, s, x, n, alpha);
}
void axpy(const float* x, float* y, size_t n, float alpha, cudaStream_t s) {
  LAUNCH(axpy_kernel, blocks_for(n), kThreads, s, x, y, n, alpha);
}
void sum_squares_partials(const float* x, size_t n, double* partials, cudaStream_t s) {
  LAUNCH(sum_squares_kernel, kReductionBlocks, kThreads, s, x, n, partials);
}
void scale_by_partials_norm(float* x, size_t n, const double* partials, double numerator,
                            double norm_scale, double eps, cudaStream_t s) {
  LAUNCH(scale_by_partials_norm_kernel, blocks_for(n), kThreads, s, x, n, partials, numerator,
         norm_scale, eps);
}
void transpose(const float* src, int rows, int cols, float* dst, cudaStream_t s) {
  const dim3 grid((cols + kTile - 1) / kTile, (rows + kTile - 1) / kTile), block(kTile, 8);
  LAUNCH(transpose_kernel, grid, block, s, src, rows, cols, dst);
}

void embedding_forward(const int32_t* tokens, size_t n, const float* table, int dim, float* out,
                       cudaStream_t s) {
  LAUNCH(embedding_forward_kernel, blocks_for(n * dim), kThreads, s, tokens, n, table, dim, out);
}
void embedding_backward(const int32_t* tokens, size_t n, const float* dout, int dim, float* dtable,
                        cudaStream_t s) {
  LAUNCH(embedding_backward_kernel, blocks_for(n * dim), kThreads, s, tokens, n, dout, dim, dtable);
}
void rmsnorm_forward(const float* x, const float* gain, size_t rows, int dim, float eps, float* out,
                     float* rstd, cudaStream_t s) {
  if (rows)
    LAUNCH(rmsnorm_forward_kernel, unsigned(rows), kThreads, s, x, gain, dim, eps, out, rstd);
}
void rmsnorm_backward_dx(const float* dout, const float* x, const float* gain, const float* rstd,
                         size_t rows, int dim, float* dx, cudaStream_t s) {
  if (rows)
    LAUNCH(rmsnorm_backward_dx_kernel, unsigned(rows), kThreads, s, dout, x, gain, rstd, dim, dx);
}
void layernorm_forward(const float* x, const float* gain, const float* bias, size_t rows, int dim,
                       float eps, float* out, float* mean, float* rstd, cudaStream_t s) {
  if (rows)
    LAUNCH(layernorm_forward_kernel, unsigned(rows), kThreads, s, x, gain, bias, dim, eps, out,
           mean, rstd);
}
void layernorm_backward_dx(const float* dout, const float* x, const float* gain, const float* mean,
                           const float* rstd, size_t rows, int dim, float* dx, cudaStream_t s) {
  if (rows)
    LAUNCH(layernorm_backward_dx_kernel, unsigned(rows), kThreads, s, dout, x, gain, mean, rstd,
           dim, dx);
}
void accumulate_column_sums(ColumnTerm term, const float* dout, const float* x, const float* mean,
                            const float* rstd, size_t rows, int dim, float* scratch, float* target,
                            cudaStream_t s) {
  const unsigned columns = unsigned((dim + kThreads - 1) / kThreads);
  LAUNCH(column_partials_kernel, dim3(columns, kColumnChunks), kThreads, s, term, dout, x, mean,
         rstd, rows, dim, scratch);
  LAUNCH(column_finish_kernel, columns, kThreads, s, scratch, dim, target);
}

void rope(float* x, int batch, int seq, int heads, int head_dim, int rot_dims,
          const float* cos_table, const float* sin_table, bool inverse, cudaStream_t s) {
  const int half = rot_dims / 2;
  const size_t n = size_t(batch) * seq * heads * half;
  if (n)
    LAUNCH(rope_kernel, blocks_for(n), kThreads, s, x, batch, seq, heads, head_dim, half, cos_table,
           sin_table, inverse ? -1.0f : 1.0f);
}
void causal_softmax_rows(float* scores, size_t rows, int seq, float* lse, cudaStream_t s) {
  if (rows)
    LAUNCH(causal_softmax_kernel, warp_rows_blocks(rows), kThreads, s, scores, rows, seq, lse);
}
void causal_probs_from_lse(float* scores, const float* lse, size_t rows, int seq, cudaStream_t s) {
  if (rows)
    LAUNCH(causal_probs_from_lse_kernel, warp_rows_blocks(rows), kThreads, s, scores, lse, rows,
           seq);
}
void causal_softmax_backward_rows(const float* probs, float* dscores, size_t rows, int seq,
                                  float scale, cudaStream_t s) {
  if (rows)
    LAUNCH(causal_softmax_backward_kernel, warp_rows_blocks(rows), kThreads, s, probs, dscores,
           rows, seq, scale);
}

void moe_route(const float* logits, size_t n, int experts, int top_k, float* probs, int32_t* choice,
               float* gate, int32_t* slot_token, float* slot_gate, int32_t* token_slot,
               int32_t* expert_offset, float* expert_stats, cudaStream_t s) {
  if (!n) return;
  LAUNCH(moe_topk_kernel, blocks_for(n), kThreads, s, logits, n, experts, top_k, probs, choice,
         gate);
  LAUNCH(moe_group_kernel, 1, kThreads, s, choice, gate, probs, n, experts, top_k, slot_token,
         slot_gate, token_slot, expert_offset, expert_stats);
}
void moe_router_backward(const float* dgate, const float* slot_gate, const int32_t* token_slot,
                         const int32_t* expert_offset, const float* probs,
                         const float* expert_stats, size_t n, int experts, int top_k,
                         float aux_scale, float* dlogits, cudaStream_t s) {
  if (!n) return;
  LAUNCH(moe_router_backward_kernel, blocks_for(n), kThreads, s, dgate, slot_gate, token_slot,
         expert_offset, probs, expert_stats, n, experts, top_k, aux_scale, dlogits);
}
void gelu_forward(const float* x, size_t n, float* out, cudaStream_t s) {
  LAUNCH(gelu_forward_kernel, blocks_for(n), kThreads, s, x, n, out);
}
void gelu_backward(const float* dout, const float* x, size_t n, float* dx, cudaStream_t s) {
  LAUNCH(gelu_backward_kernel, blocks_for(n), kThreads, s, dout, x, n, dx);
}
void swiglu_forward(const float* gate, const float* up, size_t n, float* out, cudaStream_t s) {
  LAUNCH(swiglu_forward_kernel, blocks_for(n), kThreads, s, gate, up, n, out);
}
void swiglu_backward(const float* dout, const float* gate, const float* up, size_t n, float* dgate,
                     float* dup, cudaStream_t s) {
  LAUNCH(swiglu_backward_kernel, blocks_for(n), kThreads, s, dout, gate, up, n, dgate, dup);
}
void softmax_cross_entropy(float* logits, int ld, const int32_t* targets, size_t rows, int vocab,
                           float* losses, float grad_scale, cudaStream_t s) {
  if (rows)
    LAUNCH(softmax_cross_entropy_kernel, unsigned(rows), kThreads, s, logits, ld, targets, vocab,
           losses, grad_scale);
}

void copy_block(const float* src, int ld_src, float* dst, int ld_dst, size_t rows, int cols,
                bool accumulate, cudaStream_t s) {
  LAUNCH(copy_block_kernel, blocks_for(rows * cols), kThreads, s, src, ld_src, dst, ld_dst, rows,
         cols, accumulate);
}
void gather_rows(const float* src, const int32_t* rows, size_t n, int dim, const float* row_scale,
                 float* dst, cudaStream_t s) {
  LAUNCH(gather_rows_kernel, blocks_for(n * dim), kThreads, s, src, rows, n, dim, row_scale, dst);
}
void scatter_add_rows(const float* src, const int32_t* rows, size_t n, int dim,
                      const float* row_scale, float* dst, cudaStream_t s) {
  LAUNCH(scatter_add_rows_kernel, blocks_for(n * dim), kThreads, s, src, rows, n, dim, row_scale,
         dst);
}
void scatter_rows(const float* src, const int32_t* rows, size_t n, int dim, float* dst,
                  cudaStream_t s) {
  if (n) LAUNCH(scatter_rows_kernel, blocks_for(n * dim), kThreads, s, src, rows, n, dim, dst);
}
void argmax_rows(const float* x, size_t rows, int cols, int32_t* out, cudaStream_t s) {
  if (rows) LAUNCH(argmax_rows_kernel, unsigned(rows), kThreads, s, x, cols, out);
}
size_t cached_attention_shared_bytes(const CacheShape& shape) {
  return sizeof(float) * (size_t(shape.qk_dim) + kCacheTile + size_t(shape.v_dim));
}
size_t cached_attention_dynamic_limit() {
  cudaFuncAttributes attributes{};
  TC_CUDA_CHECK(cudaFuncGetAttributes(&attributes, cached_attention_kernel));
  return size_t(48 * 1024) - attributes.sharedSizeBytes;
}
void cached_attention(const float* q, const float* keys, const float* values, const int32_t* start,
                      const CacheShape& shape, float scale, float* out, cudaStream_t s) {
  if (!shape.batch || !shape.tokens || !shape.heads) return;
  const dim3 grid(unsigned(shape.batch * shape.tokens), unsigned(shape.heads));
  cached_attention_kernel<<<grid, kThreads, cached_attention_shared_bytes(shape), s>>>(
      q, keys, values, start, shape, scale, out);
  TC_CUDA_CHECK_LAUNCH();
}
void rowwise_dot(const float* a, const float* b, size_t n, int dim, float* out, cudaStream_t s) {
  if (n) LAUNCH(rowwise_dot_kernel, warp_rows_blocks(n), kThreads, s, a, b, n, dim, out);
}

void adamw_step(float* param, const float* grad, float* m, float* v, size_t n, float lr,
                float beta1, float beta2, float eps, float weight_decay, float bc1, float bc2,
                cudaStream_t s) {
  LAUNCH(adamw_kernel, blocks_for(n), kThreads, s, param, grad, m, v, n, lr, beta1, beta2, eps,
         weight_decay, bc1, bc2);
}
void adam_moments_update_partials(const float* grad, float* m, float* v, size_t n, float beta1,
                                  float beta2, float eps, float bc1, float bc2, double* partials,
                                  cudaStream_t s) {
  LAUNCH(adam_moments_kernel, kReductionBlocks, kThreads, s, grad, m, v, n, beta1, beta2, eps, bc1,
         bc2, partials);
}
void momentum_step(const float* grad, float* buf, float* out, size_t n, float mu, bool nesterov,
                   cudaStream_t s) {
  LAUNCH(momentum_kernel, blocks_for(n), kThreads, s, grad, buf, out, n, mu, nesterov);
}

}  // namespace trainer_core::cuda
