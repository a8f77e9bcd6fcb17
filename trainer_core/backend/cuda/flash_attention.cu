#include <cuda_bf16.h>
#include <mma.h>

#include <cmath>

#include "trainer_core/backend/cuda/cuda_check.h"
#include "trainer_core/backend/cuda/cuda_kernels.h"
#include "trainer_core/backend/cuda/flash_attention.h"

namespace trainer_core::cuda {
namespace {

using namespace nvcuda;
using bf16 = __nv_bfloat16;

constexpr int kTile = 64;  // queries and keys per tile
constexpr int kFrag = 16;  // WMMA fragments are 16 × 16 × 16
constexpr int kWarps = kTile / kFrag;
constexpr int kThreads = kWarps * 32;  // warp w owns rows [16w, 16w + 16) of a tile

using Accumulator = wmma::fragment<wmma::accumulator, kFrag, kFrag, kFrag, float>;
using RowA = wmma::fragment<wmma::matrix_a, kFrag, kFrag, kFrag, bf16, wmma::row_major>;
using ColA = wmma::fragment<wmma::matrix_a, kFrag, kFrag, kFrag, bf16, wmma::col_major>;
using RowB = wmma::fragment<wmma::matrix_b, kFrag, kFrag, kFrag, bf16, wmma::row_major>;
using ColB = wmma::fragment<wmma::matrix_b, kFrag, kFrag, kFrag, bf16, wmma::col_major>;

// Shared-memory row strides in elements: padded against bank conflicts, multiples of 8 (bf16) or
// 4 (fp32) as WMMA requires, and every 16-row block and 16-column step 32-byte aligned.
template <int D>
struct Ld {
  static constexpr int kHead = D + 8;       // bf16 tiles of head_dim columns (Q, K, V, dO)
  static constexpr int kProb = kTile + 8;   // bf16 64-column tiles (P, dS)
  static constexpr int kScore = kTile + 4;  // fp32 64-column tiles (S, dP)
  static constexpr int kAcc = D + 4;        // fp32 head_dim-column tiles (O, dK, dV, dQ)
};

template <int D>
constexpr size_t forward_bytes() {
  return sizeof(bf16) * kTile * (3 * Ld<D>::kHead + Ld<D>::kProb) +
         sizeof(float) * kTile * (Ld<D>::kScore + Ld<D>::kAcc);
}
template <int D>
constexpr size_t backward_bytes() {
  return sizeof(bf16) * kTile * (4 * Ld<D>::kHead + 2 * Ld<D>::kProb) +
         sizeof(float) * kTile * (2 * Ld<D>::kScore + 3 * Ld<D>::kAcc + 2);
}

// Rows [row0, row0 + 64) of one head (D columns of an fp32 matrix with row stride ld) into a bf16
// tile; rows at or past seq are zeros.
template <int D>
__device__ void load_tile(const float* src, int ld, int row0, int seq, bf16* dst) {
  for (int i = threadIdx.x; i < kTile * D; i += blockDim.x) {
    const int r = i / D, c = i % D;
    const float x = row0 + r < seq ? src[size_t(row0 + r) * ld + c] : 0.0f;
    dst[r * Ld<D>::kHead + c] = __float2bfloat16_rn(x);
  }
}

// This warp's 16 rows × 64 columns of A Bᵀ into an fp32 tile: A (64 × D) and B (64 × D) bf16
// tiles, both row-major with stride Ld<D>::kHead (so Bᵀ is read as a column-major operand).
template <int D>
__device__ void rows_times_transposed(const bf16* a, const bf16* b, float* c) {
  const int warp = threadIdx.x / 32;
  for (int j = 0; j < kTile / kFrag; ++j) {
    Accumulator acc;
    wmma::fill_fragment(acc, 0.0f);
    for (int kk = 0; kk < D / kFrag; ++kk) {
      RowA fa;
      ColB fb;
      wmma::load_matrix_sync(fa, a + warp * kFrag * Ld<D>::kHead + kk * kFrag, Ld<D>::kHead);
      wmma::load_matrix_sync(fb, b + j * kFrag * Ld<D>::kHead + kk * kFrag, Ld<D>::kHead);
      wmma::mma_sync(acc, fa, fb, acc);
    }
    wmma::store_matrix_sync(c + warp * kFrag * Ld<D>::kScore + j * kFrag, acc, Ld<D>::kScore,
                            wmma::mem_row_major);
  }
}

// This warp's 16 rows × D columns of c (+)= op(P) V: P a 64 × 64 bf16 tile (stride kProb), read
// as it is (rows of P) or transposed (rows of Pᵀ); V a 64 × D bf16 tile (stride kHead).
template <int D, bool kTransposeP>
__device__ void rows_times_head(const bf16* p, const bf16* v, float* c, bool accumulate) {
  const int warp = threadIdx.x / 32;
  for (int j = 0; j < D / kFrag; ++j) {
    Accumulator acc;
    float* out = c + warp * kFrag * Ld<D>::kAcc + j * kFrag;
    if (accumulate)
      wmma::load_matrix_sync(acc, out, Ld<D>::kAcc, wmma::mem_row_major);
    else
      wmma::fill_fragment(acc, 0.0f);
    for (int kk = 0; kk < kTile / kFrag; ++kk) {
      RowB fb;
      wmma::load_matrix_sync(fb, v + kk * kFrag * Ld<D>::kHead + j * kFrag, Ld<D>::kHead);
      if constexpr (kTransposeP) {
        ColA fa;  // element (m, k) of Pᵀ is P[k][m]
        wmma::load_matrix_sync(fa, p + kk * kFrag * Ld<D>::kProb + warp * kFrag, Ld<D>::kProb);
        wmma::mma_sync(acc, fa, fb, acc);
      } else {
        RowA fa;
        wmma::load_matrix_sync(fa, p + warp * kFrag * Ld<D>::kProb + kk * kFrag, Ld<D>::kProb);
        wmma::mma_sync(acc, fa, fb, acc);
      }
    }
    wmma::store_matrix_sync(out, acc, Ld<D>::kAcc, wmma::mem_row_major);
  }
}

// Grid (query tiles, heads, batch). Two lanes per row: row r = 16·warp + lane/2, and the lane's
// parity picks half of the row's columns; each warp reads and writes its own rows only, so the
// softmax needs __syncwarp, and only K/V loads a block-wide barrier.
template <int D>
__global__ void __launch_bounds__(kThreads)
    flash_forward_kernel(const float* q, const float* k, const float* v, int seq, int heads,
                         float scale, float* lse, float* out) {
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* qs = reinterpret_cast<bf16*>(smem);
  bf16* ks = qs + kTile * Ld<D>::kHead;
  bf16* vs = ks + kTile * Ld<D>::kHead;
  bf16* ps = vs + kTile * Ld<D>::kHead;
  float* ss = reinterpret_cast<float*>(ps + kTile * Ld<D>::kProb);
  float* os = ss + kTile * Ld<D>::kScore;
  const int q0 = blockIdx.x * kTile, h = blockIdx.y, b = blockIdx.z, ld = heads * D;
  const size_t base = size_t(b) * seq * ld + size_t(h) * D;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int r = warp * kFrag + lane / 2, half = lane % 2, query = q0 + r;
  load_tile<D>(q + base, ld, q0, seq, qs);
  for (int i = threadIdx.x; i < kTile * Ld<D>::kAcc; i += blockDim.x) os[i] = 0.0f;
  float m = -INFINITY, l = 0.0f;
  const int last_tile = min(seq - 1, q0 + kTile - 1) / kTile;  // the diagonal tile
  for (int kt = 0; kt <= last_tile; ++kt) {
    const int k0 = kt * kTile;
    __syncthreads();  // the previous tile's K and V are no longer read
    load_tile<D>(k + base, ld, k0, seq, ks);
    load_tile<D>(v + base, ld, k0, seq, vs);
    __syncthreads();
    rows_times_transposed<D>(qs, ks, ss);
    __syncwarp();
    // Every row sees at least one key per tile (key k0 <= its query), so m_new is finite.
    float* srow = ss + r * Ld<D>::kScore;
    float tile_max = -INFINITY;
    for (int c = half * 32; c < half * 32 + 32; ++c) {
      const int key = k0 + c;
      const float s = key <= query && key < seq ? srow[c] * scale : -INFINITY;
      srow[c] = s;
      tile_max = fmaxf(tile_max, s);
    }
    const float m_new = fmaxf(m, fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1)));
    const float carry = expf(m - m_new);  // 0 on the first tile
    float sum = 0.0f;
    for (int c = half * 32; c < half * 32 + 32; ++c) {
      const float p = expf(srow[c] - m_new);
      sum += p;
      ps[r * Ld<D>::kProb + c] = __float2bfloat16_rn(p);
    }
    l = l * carry + sum + __shfl_xor_sync(0xffffffffu, sum, 1);
    m = m_new;
    for (int c = half * (D / 2); c < (half + 1) * (D / 2); ++c) os[r * Ld<D>::kAcc + c] *= carry;
    __syncwarp();
    rows_times_head<D, false>(ps, vs, os, true);
  }
  __syncwarp();
  if (query < seq) {
    for (int c = half * (D / 2); c < (half + 1) * (D / 2); ++c)
      out[base + size_t(query) * ld + c] = os[r * Ld<D>::kAcc + c] / l;
    if (half == 0) lse[(size_t(b) * heads + h) * seq + query] = m + logf(l);
  }
}

// Grid (key tiles, heads, batch). row_dot[(b·seq + i)·heads + h] = rowsum(dout ∘ out) of query i.
template <int D>
__global__ void __launch_bounds__(kThreads)
    flash_backward_kernel(const float* dout, const float* q, const float* k, const float* v,
                          const float* lse, const float* row_dot, int seq, int heads, float scale,
                          float* dq, float* dk, float* dv) {
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* ks = reinterpret_cast<bf16*>(smem);
  bf16* vs = ks + kTile * Ld<D>::kHead;
  bf16* qs = vs + kTile * Ld<D>::kHead;
  bf16* dos = qs + kTile * Ld<D>::kHead;
  bf16* ps = dos + kTile * Ld<D>::kHead;
  bf16* dss = ps + kTile * Ld<D>::kProb;
  float* ss = reinterpret_cast<float*>(dss + kTile * Ld<D>::kProb);
  float* dps = ss + kTile * Ld<D>::kScore;
  float* dks = dps + kTile * Ld<D>::kScore;
  float* dvs = dks + kTile * Ld<D>::kAcc;
  float* dqs = dvs + kTile * Ld<D>::kAcc;
  float* lse_s = dqs + kTile * Ld<D>::kAcc;
  float* dot_s = lse_s + kTile;
  const int k0 = blockIdx.x * kTile, h = blockIdx.y, b = blockIdx.z, ld = heads * D;
  const size_t base = size_t(b) * seq * ld + size_t(h) * D;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int r = warp * kFrag + lane / 2, half = lane % 2;
  load_tile<D>(k + base, ld, k0, seq, ks);
  load_tile<D>(v + base, ld, k0, seq, vs);
  for (int i = threadIdx.x; i < kTile * Ld<D>::kAcc; i += blockDim.x) dks[i] = dvs[i] = 0.0f;
  for (int q0 = k0; q0 < seq; q0 += kTile) {  // query tiles on and after the diagonal
    __syncthreads();                          // the previous query tile is no longer read
    load_tile<D>(q + base, ld, q0, seq, qs);
    load_tile<D>(dout + base, ld, q0, seq, dos);
    for (int i = threadIdx.x; i < kTile; i += blockDim.x) {
      const bool valid = q0 + i < seq;
      lse_s[i] = valid ? lse[(size_t(b) * heads + h) * seq + q0 + i] : 0.0f;
      dot_s[i] = valid ? row_dot[(size_t(b) * seq + q0 + i) * heads + h] : 0.0f;
    }
    __syncthreads();
    rows_times_transposed<D>(qs, ks, ss);    // S = Q Kᵀ, this warp's query rows
    rows_times_transposed<D>(dos, vs, dps);  // dP = dO Vᵀ
    __syncwarp();
    const int query = q0 + r;
    for (int c = half * 32; c < half * 32 + 32; ++c) {
      const int key = k0 + c;
      const bool visible = key <= query && query < seq && key < seq;
      const float p = visible ? expf(ss[r * Ld<D>::kScore + c] * scale - lse_s[r]) : 0.0f;
      // dS = P ∘ (dP − rowsum(dO ∘ O)), with the score scale folded in for dQ and dK.
      const float ds = p * (dps[r * Ld<D>::kScore + c] - dot_s[r]) * scale;
      ps[r * Ld<D>::kProb + c] = __float2bfloat16_rn(p);
      dss[r * Ld<D>::kProb + c] = __float2bfloat16_rn(ds);
    }
    __syncthreads();  // dV and dK read P and dS by columns: every warp's rows
    rows_times_head<D, true>(ps, dos, dvs, true);    // dV += Pᵀ dO (this warp's key rows)
    rows_times_head<D, true>(dss, qs, dks, true);    // dK += dSᵀ Q
    rows_times_head<D, false>(dss, ks, dqs, false);  // this tile's dQ = dS K
    __syncwarp();
    if (query < seq)
      for (int c = half * (D / 2); c < (half + 1) * (D / 2); ++c)
        atomicAdd(dq + base + size_t(query) * ld + c, dqs[r * Ld<D>::kAcc + c]);
  }
  __syncthreads();
  for (int i = threadIdx.x; i < kTile * D; i += blockDim.x) {
    const int row = i / D, c = i % D;
    if (k0 + row >= seq) continue;
    dk[base + size_t(k0 + row) * ld + c] = dks[row * Ld<D>::kAcc + c];
    dv[base + size_t(k0 + row) * ld + c] = dvs[row * Ld<D>::kAcc + c];
  }
}

template <int D>
void launch_forward(const float* q, const float* k, const float* v, const AttentionShape& sh,
                    float* lse, float* out, cudaStream_t s) {
  constexpr size_t bytes = forward_bytes<D>();
  TC_CUDA_CHECK(cudaFuncSetAttribute(flash_forward_kernel<D>,
                                     cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
  const dim3 grid(unsigned((sh.seq + kTile - 1) / kTile), unsigned(sh.heads), unsigned(sh.batch));
  flash_forward_kernel<D><<<grid, kThreads, bytes, s>>>(q, k, v, sh.seq, sh.heads,
                                                        1.0f / std::sqrt(float(D)), lse, out);
  TC_CUDA_CHECK_LAUNCH();
}

template <int D>
void launch_backward(const float* dout, const float* q, const float* k, const float* v,
                     const float* out, const float* lse, const AttentionShape& sh, float* row_dot,
                     float* dq, float* dk, float* dv, cudaStream_t s) {
  const size_t rows = size_t(sh.batch) * sh.seq * sh.heads;
  rowwise_dot(dout, out, rows, D, row_dot, s);  // rows (b, i, h) of D contiguous floats
  TC_CUDA_CHECK(cudaMemsetAsync(dq, 0, rows * D * sizeof(float), s));
  constexpr size_t bytes = backward_bytes<D>();
  TC_CUDA_CHECK(cudaFuncSetAttribute(flash_backward_kernel<D>,
                                     cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
  const dim3 grid(unsigned((sh.seq + kTile - 1) / kTile), unsigned(sh.heads), unsigned(sh.batch));
  flash_backward_kernel<D><<<grid, kThreads, bytes, s>>>(
      dout, q, k, v, lse, row_dot, sh.seq, sh.heads, 1.0f / std::sqrt(float(D)), dq, dk, dv);
  TC_CUDA_CHECK_LAUNCH();
}

}  // namespace

bool flash_attention_supported(int head_dim, int device) {
  if (head_dim != 64 && head_dim != 128) return false;
  int optin = 0;
  if (cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) !=
      cudaSuccess)
    return false;
  const size_t needed = head_dim == 64 ? backward_bytes<64>() : backward_bytes<128>();
  return size_t(optin) >= needed;
}

void flash_attention_forward(const float* q, const float* k, const float* v,
                             const AttentionShape& shape, float* lse, float* out, cudaStream_t s) {
  if (!shape.batch || !shape.seq || !shape.heads) return;
  if (shape.head_dim == 64)
    launch_forward<64>(q, k, v, shape, lse, out, s);
  else
    launch_forward<128>(q, k, v, shape, lse, out, s);
}

void flash_attention_backward(const float* dout, const float* q, const float* k, const float* v,
                              const float* out, const float* lse, const AttentionShape& shape,
                              float* row_dot, float* dq, float* dk, float* dv, cudaStream_t s) {
  if (!shape.batch || !shape.seq || !shape.heads) return;
  if (shape.head_dim == 64)
    launch_backward<64>(dout, q, k, v, out, lse, shape, row_dot, dq, dk, dv, s);
  else
    launch_backward<128>(dout, q, k, v, out, lse, shape, row_dot, dq, dk, dv, s);
}

}  // namespace trainer_core::cuda
