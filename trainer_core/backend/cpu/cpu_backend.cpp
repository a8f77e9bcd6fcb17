#include "trainer_core/backend/cpu/cpu_backend.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "trainer_core/backend/bf16.h"
#include "trainer_core/backend/cpu/fast_math.h"

extern "C" void dgesvd_(const char* jobu, const char* jobvt, const int* m, const int* n, double* a,
                        const int* lda, double* s, double* u, const int* ldu, double* vt,
                        const int* ldvt, double* work, const int* lwork, int* info);

namespace trainer_core {
namespace {

constexpr float kGeluK = 0.7978845608028654f;  // sqrt(2/pi)
constexpr float kGeluC = 0.044715f;

// Reductions are split into a fixed number of chunks summed in order, so results do not
// depend on the thread count or OpenMP's reduction order (resumed runs stay bit-identical).
constexpr int kReductionChunks = 64;

// Chunk c of n values is [chunk_begin(n, c), chunk_begin(n, c + 1)).
size_t chunk_begin(size_t n, int c) { return n * size_t(c) / kReductionChunks; }

double sum_squares_range(const float* x, size_t begin, size_t end) {
  double s = 0;
  for (size_t i = begin; i < end; ++i) s += double(x[i]) * x[i];
  return s;
}

template <typename ChunkFn>
double ordered_chunk_sum(size_t n, ChunkFn&& chunk_sum) {
  double partial[kReductionChunks] = {};
#pragma omp parallel for schedule(static)
  for (int c = 0; c < kReductionChunks; ++c)
    partial[c] = chunk_sum(chunk_begin(n, c), chunk_begin(n, c + 1));
  double total = 0;
  for (double p : partial) total += p;
  return total;
}

CBLAS_TRANSPOSE to_cblas(Transpose t) { return t == Transpose::kYes ? CblasTrans : CblasNoTrans; }

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int threads) : threads_(threads) {
    if (threads > 0) openblas_set_num_threads(threads);
    bind_thread();
  }
  std::string name() const override { return "cpu"; }
  void bind_thread() override {
    if (threads_ > 0) omp_set_num_threads(threads_);  // a per-thread setting in OpenMP
  }

  float* allocate(size_t count) override { return static_cast<float*>(allocate_bytes(count * 4)); }
  void release(float* data, size_t count) override {
    std::free(data);
    note_released(count * sizeof(float));
  }
  void upload(float* dst, const float* src, size_t n) override { std::memcpy(dst, src, n * 4); }
  void download(float* dst, const float* src, size_t n) override { std::memcpy(dst, src, n * 4); }
  int32_t* allocate_ints(size_t count) override {
    return static_cast<int32_t*>(allocate_bytes(count * sizeof(int32_t)));
  }
  void release_ints(int32_t* data, size_t count) override {
    std::free(data);
    note_released(count * sizeof(int32_t));
  }
  void upload_ints(int32_t* dst, const int32_t* src, size_t n) override {
    if (n) std::memcpy(dst, src, n * sizeof(int32_t));
  }
  void download_ints(int32_t* dst, const int32_t* src, size_t n) override {
    if (n) std::memcpy(dst, src, n * sizeof(int32_t));
  }
  Bf16* allocate_bf16(size_t count) override {
    return static_cast<Bf16*>(allocate_bytes(count * sizeof(Bf16)));
  }
  void release_bf16(Bf16* data, size_t count) override {
    std::free(data);
    note_released(count * sizeof(Bf16));
  }

  void fill(float* x, size_t n, float value) override {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; ++i) x[i] = value;
  }
  void copy(const float* src, float* dst, size_t n) override {
    if (n) std::memcpy(dst, src, n * sizeof(float));
  }
  void scale(float* x, size_t n, float alpha) override {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; ++i) x[i] *= alpha;
  }
  // Each block's norm from the chunks sum_squares takes, summed in the same order (bit for bit
  // what the block gets alone, whatever the thread count): one team for the whole stack, every
  // block's chunks in one loop and the scaling in a second, instead of two teams per block.
  void scale_to_inverse_norm(float* x, size_t n, int count, double numerator, double norm_scale,
                             double eps) override {
    const int chunks = count * kReductionChunks;
    norm_partials_.resize(size_t(chunks));
    norm_factors_.resize(size_t(count));
    double* partial = norm_partials_.data();
    float* factor = norm_factors_.data();
#pragma omp parallel
    {
#pragma omp for schedule(static)
      for (int j = 0; j < chunks; ++j) {
        const int c = j % kReductionChunks;
        partial[j] = sum_squares_range(x + size_t(j / kReductionChunks) * n, chunk_begin(n, c),
                                       chunk_begin(n, c + 1));
      }
#pragma omp single
      for (int b = 0; b < count; ++b) {
        double total = 0;
        for (int c = 0; c < kReductionChunks; ++c) total += partial[b * kReductionChunks + c];
        factor[b] = float(numerator / (norm_scale * std::sqrt(total) + eps));
      }
#pragma omp for schedule(static)
      for (int j = 0; j < chunks; ++j) {
        float* block = x + size_t(j / kReductionChunks) * n;
        const float f = factor[j / kReductionChunks];
        const int c = j % kReductionChunks;
        for (size_t i = chunk_begin(n, c); i < chunk_begin(n, c + 1); ++i) block[i] *= f;
      }
    }
  }
  void axpy(const float* x, float* y, size_t n, float alpha) override {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; ++i) y[i] += alpha * x[i];
  }
  double sum_squares(const float* x, size_t n) override {
    return ordered_chunk_sum(n, [x](size_t b, size_t e) { return sum_squares_range(x, b, e); });
  }
  void transpose(const float* src, int rows, int cols, float* dst) override {
#pragma omp parallel for schedule(static)
    for (int c = 0; c < cols; ++c)
      for (int r = 0; r < rows; ++r) dst[size_t(c) * rows + r] = src[size_t(r) * cols + c];
  }
  void gemm(Transpose ta, Transpose tb, int m, int n, int k, float alpha, const float* a, int lda,
            const float* b, int ldb, float beta, float* c, int ldc) override {
    if (m == 1) {
      // One row (a decode step at batch 1): a matrix-vector product, which reads op(B) once where
      // sgemm would first pack a copy of it.
      const int a_step = ta == Transpose::kNo ? 1 : lda;
      if (tb == Transpose::kNo)
        cblas_sgemv(CblasRowMajor, CblasTrans, k, n, alpha, b, ldb, a, a_step, beta, c, 1);
      else
        cblas_sgemv(CblasRowMajor, CblasNoTrans, n, k, alpha, b, ldb, a, a_step, beta, c, 1);
      return;
    }
    cblas_sgemm(CblasRowMajor, to_cblas(ta), to_cblas(tb), m, n, k, alpha, a, lda, b, ldb, beta, c,
                ldc);
  }

  void gemm_strided_batched(Transpose ta, Transpose tb, int m, int n, int k, float alpha,
                            const float* a, int lda, long long stride_a, const float* b, int ldb,
                            long long stride_b, float beta, float* c, int ldc, long long stride_c,
                            int batch) override {
    auto one = [&](int i) {
      gemm(ta, tb, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb, beta,
           c + i * stride_c, ldc);
    };
    // A batch that keeps every thread busy is split across the team, each GEMM on one thread
    // (OpenBLAS's OpenMP build runs a GEMM called inside a parallel region on the calling
    // thread): small GEMMs, as Newton-Schulz's on a stack of hidden matrices, gain more from
    // running side by side than from OpenBLAS splitting each one, and the team meets once per
    // batch instead of once per GEMM. A smaller batch leaves the threads to OpenBLAS.
    if (batch > 1 && batch >= omp_get_max_threads()) {
#pragma omp parallel for schedule(static)
      for (int i = 0; i < batch; ++i) one(i);
      return;
    }
    for (int i = 0; i < batch; ++i) one(i);
  }
  void to_bf16(const float* src, size_t n, Bf16* dst) override {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; ++i) dst[i] = round_to_bf16(src[i]);
  }
  // The reference: both operands widened to fp32 (exactly), then the fp32 GEMM, in which each
  // product of two bf16 values is exact. The widened copies are emulation scratch, not counted
  // in the peak (a GPU reads the bf16 values directly).
  void gemm_bf16(Transpose ta, Transpose tb, int m, int n, int k, float alpha, const Bf16* a,
                 int lda, const Bf16* b, int ldb, float beta, float* c, int ldc) override {
    if (m == 0 || n == 0) return;
    auto widened = [](const Bf16* x, int rows, int cols, int ld, std::vector<float>& out) {
      const size_t count = rows && cols ? size_t(rows - 1) * ld + cols : 0;
      out.resize(count);
#pragma omp parallel for schedule(static)
      for (size_t i = 0; i < count; ++i) out[i] = widen(x[i]);
      return out.data();
    };
    const bool at = ta == Transpose::kYes, bt = tb == Transpose::kYes;
    const float* wa = widened(a, at ? k : m, at ? m : k, lda, widened_a_);
    const float* wb = widened(b, bt ? n : k, bt ? k : n, ldb, widened_b_);
    gemm(ta, tb, m, n, k, alpha, wa, lda, wb, ldb, beta, c, ldc);
  }

  void embedding_forward(const int32_t* tokens, size_t n, const float* table, int dim,
                         float* out) override {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; ++i)
      std::memcpy(out + i * dim, table + size_t(tokens[i]) * dim, dim * sizeof(float));
  }
  void embedding_backward(const int32_t* tokens, size_t n, const float* dout, int dim,
                          float* dtable) override {
    // Parallel over feature columns: two tokens with the same id never race.
#pragma omp parallel for schedule(static)
    for (int d = 0; d < dim; ++d)
      for (size_t i = 0; i < n; ++i) dtable[size_t(tokens[i]) * dim + d] += dout[i * dim + d];
  }

  void rmsnorm_forward(const float* x, const float* gain, size_t rows, int dim, float eps,
                       float* out, float* rstd) override {
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; ++r) {
      const float* xr = x + r * dim;
      float ss = 0;
#pragma omp simd reduction(+ : ss)
      for (int i = 0; i < dim; ++i) ss += xr[i] * xr[i];
      const float s = 1.0f / std::sqrt(ss / dim + eps);
      rstd[r] = s;
      float* o = out + r * dim;
#pragma omp simd
      for (int i = 0; i < dim; ++i) o[i] = xr[i] * s * gain[i];
    }
  }
  void rmsnorm_backward(const float* dout, const float* x, const float* gain, const float* rstd,
                        size_t rows, int dim, float* dx, float* dgain) override {
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; ++r) {
      const float *xr = x + r * dim, *dy = dout + r * dim;
      const float s = rstd[r];
      float dot = 0;  // sum_j g_j dy_j x_j
#pragma omp simd reduction(+ : dot)
      for (int i = 0; i < dim; ++i) dot += gain[i] * dy[i] * xr[i];
      const float k = dot * s * s * s / dim;
      float* d = dx + r * dim;
#pragma omp simd
      for (int i = 0; i < dim; ++i) d[i] += s * gain[i] * dy[i] - k * xr[i];
    }
    accumulate_column_sums(rows, dim, dgain, [&](size_t r, int i) {
      return dout[r * dim + i] * x[r * dim + i] * rstd[r];
    });
  }
  void layernorm_forward(const float* x, const float* gain, const float* bias, size_t rows, int dim,
                         float eps, float* out, float* mean, float* rstd) override {
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; ++r) {
      const float* xr = x + r * dim;
      float sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int i = 0; i < dim; ++i) sum += xr[i];
      const float mu = sum / dim;
      float var = 0;
#pragma omp simd reduction(+ : var)
      for (int i = 0; i < dim; ++i) var += (xr[i] - mu) * (xr[i] - mu);
      const float s = 1.0f / std::sqrt(var / dim + eps);
      mean[r] = mu;
      rstd[r] = s;
      float* o = out + r * dim;
#pragma omp simd
      for (int i = 0; i < dim; ++i) o[i] = (xr[i] - mu) * s * gain[i] + bias[i];
    }
  }
  void layernorm_backward(const float* dout, const float* x, const float* gain, const float* mean,
                          const float* rstd, size_t rows, int dim, float* dx, float* dgain,
                          float* dbias) override {
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; ++r) {
      const float *xr = x + r * dim, *dy = dout + r * dim;
      const float mu = mean[r], s = rstd[r];
      float mean_gdy = 0, mean_gdy_xhat = 0;
#pragma omp simd reduction(+ : mean_gdy, mean_gdy_xhat)
      for (int i = 0; i < dim; ++i) {
        const float gdy = gain[i] * dy[i];
        mean_gdy += gdy;
        mean_gdy_xhat += gdy * (xr[i] - mu) * s;
      }
      mean_gdy /= dim;
      mean_gdy_xhat /= dim;
      float* d = dx + r * dim;
#pragma omp simd
      for (int i = 0; i < dim; ++i)
        d[i] += s * (gain[i] * dy[i] - mean_gdy - (xr[i] - mu) * s * mean_gdy_xhat);
    }
    accumulate_column_sums(rows, dim, dgain, [&](size_t r, int i) {
      return dout[r * dim + i] * (x[r * dim + i] - mean[r]) * rstd[r];
    });
    accumulate_column_sums(rows, dim, dbias, [&](size_t r, int i) { return dout[r * dim + i]; });
  }

  void rope(float* x, const AttentionShape& sh, int rot_dims, const float* cos_table,
            const float* sin_table, bool inverse) override {
    const int half = rot_dims / 2;
    const float sign = inverse ? -1.0f : 1.0f;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < sh.batch; ++b)
      for (int t = 0; t < sh.seq; ++t) {
        const float* c = cos_table + size_t(t) * half;
        const float* s = sin_table + size_t(t) * half;
        for (int h = 0; h < sh.heads; ++h) {
          float* v = x + (size_t(b) * sh.seq + t) * sh.row_stride() + size_t(h) * sh.head_dim;
#pragma omp simd
          for (int i = 0; i < half; ++i) {
            const float x1 = v[i], x2 = v[i + half], sn = sign * s[i];
            v[i] = x1 * c[i] - x2 * sn;
            v[i + half] = x1 * sn + x2 * c[i];
          }
        }
      }
  }

  // Flash-style attention, tiled in kAttentionBlock x kAttentionBlock blocks of queries and keys:
  // the forward keeps a running max, sum and output per query row (online softmax) and never
  // holds more than one block of scores; the backward recomputes each block's probabilities
  // from lse. Scratch per thread: a few blocks, whatever the sequence length.
  static constexpr int kAttentionBlock = 64;
  void attention_forward(const float* q, const float* k, const float* v, const AttentionShape& sh,
                         float* lse, float* out) override {
    const int T = sh.seq, hd = sh.head_dim, ld = sh.row_stride(), B = kAttentionBlock;
    const float scale = 1.0f / std::sqrt(float(hd));
#pragma omp parallel
    {
      std::vector<float> s(size_t(B) * B), acc(size_t(B) * hd), m(static_cast<size_t>(B)),
          l(static_cast<size_t>(B));
#pragma omp for collapse(2) schedule(static)
      for (int b = 0; b < sh.batch; ++b)
        for (int h = 0; h < sh.heads; ++h) {
          const size_t base = size_t(b) * T * ld + size_t(h) * hd;
          float* row_lse = lse + (size_t(b) * sh.heads + h) * T;
          for (int i0 = 0; i0 < T; i0 += B) {
            const int nq = std::min(B, T - i0);
            std::fill(m.begin(), m.end(), -std::numeric_limits<float>::infinity());
            std::fill(l.begin(), l.end(), 0.0f);
            std::fill(acc.begin(), acc.end(), 0.0f);
            for (int j0 = 0; j0 < i0 + nq; j0 += B) {  // key blocks up to the diagonal
              const int nk = std::min(B, T - j0);
              cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, hd, scale,
                          q + base + size_t(i0) * ld, ld, k + base + size_t(j0) * ld, ld, 0.0f,
                          s.data(), B);
              for (int r = 0; r < nq; ++r) {
                float* row = s.data() + size_t(r) * B;
                const int seen = std::min(nk, i0 + r - j0 + 1);  // keys j <= i: at least 1
                float block_max = row[0];
                for (int c = 1; c < seen; ++c) block_max = std::max(block_max, row[c]);
                const float m_new = std::max(m[size_t(r)], block_max);
                const float carry = cpu::fast_exp(m[size_t(r)] - m_new);  // 0 on the first block
                float sum = 0;
#pragma omp simd reduction(+ : sum)
                for (int c = 0; c < seen; ++c) {
                  row[c] = cpu::fast_exp(row[c] - m_new);
                  sum += row[c];
                }
                for (int c = seen; c < nk; ++c) row[c] = 0.0f;
                l[size_t(r)] = l[size_t(r)] * carry + sum;
                m[size_t(r)] = m_new;
                float* a = acc.data() + size_t(r) * hd;
#pragma omp simd
                for (int d = 0; d < hd; ++d) a[d] *= carry;
              }
              cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, hd, nk, 1.0f, s.data(), B,
                          v + base + size_t(j0) * ld, ld, 1.0f, acc.data(), hd);
            }
            for (int r = 0; r < nq; ++r) {
              const float inv = 1.0f / l[size_t(r)];
              float* o = out + base + size_t(i0 + r) * ld;
              const float* a = acc.data() + size_t(r) * hd;
#pragma omp simd
              for (int d = 0; d < hd; ++d) o[d] = a[d] * inv;
              row_lse[i0 + r] = m[size_t(r)] + std::log(l[size_t(r)]);
            }
          }
        }
    }
  }
  void attention_backward(const float* dout, const float* q, const float* k, const float* v,
                          const float* out, const float* lse, const AttentionShape& sh, float* dq,
                          float* dk, float* dv) override {
    const int T = sh.seq, hd = sh.head_dim, ld = sh.row_stride(), B = kAttentionBlock;
    const float scale = 1.0f / std::sqrt(float(hd));
#pragma omp parallel
    {
      std::vector<float> p(size_t(B) * B), ds(size_t(B) * B), dot_out(static_cast<size_t>(T));
#pragma omp for collapse(2) schedule(static)
      for (int b = 0; b < sh.batch; ++b)
        for (int h = 0; h < sh.heads; ++h) {
          const size_t base = size_t(b) * T * ld + size_t(h) * hd;
          const float* row_lse = lse + (size_t(b) * sh.heads + h) * T;
          // rowsum(P ∘ dP) = dout · out per query row; this head's gradients start at zero.
          for (int i = 0; i < T; ++i) {
            const float* o = out + base + size_t(i) * ld;
            const float* g = dout + base + size_t(i) * ld;
            float dot = 0;
#pragma omp simd reduction(+ : dot)
            for (int d = 0; d < hd; ++d) dot += o[d] * g[d];
            dot_out[size_t(i)] = dot;
            for (float* grad : {dq, dk, dv}) std::fill_n(grad + base + size_t(i) * ld, hd, 0.0f);
          }
          for (int i0 = 0; i0 < T; i0 += B) {
            const int nq = std::min(B, T - i0);
            const float* q_blk = q + base + size_t(i0) * ld;
            const float* dout_blk = dout + base + size_t(i0) * ld;
            for (int j0 = 0; j0 < i0 + nq; j0 += B) {
              const int nk = std::min(B, T - j0);
              const float* k_blk = k + base + size_t(j0) * ld;
              const float* v_blk = v + base + size_t(j0) * ld;
              cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, hd, scale, q_blk, ld,
                          k_blk, ld, 0.0f, p.data(), B);
              cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, hd, 1.0f, dout_blk, ld,
                          v_blk, ld, 0.0f, ds.data(), B);  // dP
              for (int r = 0; r < nq; ++r) {
                float* pr = p.data() + size_t(r) * B;
                float* dr = ds.data() + size_t(r) * B;
                const int seen = std::min(nk, i0 + r - j0 + 1);
                const float row_l = row_lse[i0 + r], row_dot = dot_out[size_t(i0 + r)];
#pragma omp simd
                for (int c = 0; c < seen; ++c) {
                  pr[c] = cpu::fast_exp(pr[c] - row_l);
                  dr[c] = pr[c] * (dr[c] - row_dot) * scale;
                }
                for (int c = seen; c < nk; ++c) pr[c] = dr[c] = 0.0f;
              }
              // dV += Pᵀ dO ; dQ += dS K ; dK += dSᵀ Q
              cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, hd, nq, 1.0f, p.data(), B,
                          dout_blk, ld, 1.0f, dv + base + size_t(j0) * ld, ld);
              cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, hd, nk, 1.0f, ds.data(), B,
                          k_blk, ld, 1.0f, dq + base + size_t(i0) * ld, ld);
              cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, hd, nq, 1.0f, ds.data(), B,
                          q_blk, ld, 1.0f, dk + base + size_t(j0) * ld, ld);
            }
          }
        }
    }
  }

  // One query row at a time (generation has few): scores over the visible positions, softmax,
  // then the probability-weighted sum of values.
  void cached_attention(const float* q, const float* keys, const float* values,
                        const int32_t* start, const CacheShape& sh, float scale,
                        float* out) override {
    const int group = sh.heads / sh.kv_heads;
#pragma omp parallel
    {
      std::vector<float> scores(size_t(sh.capacity));
#pragma omp for collapse(3) schedule(static)
      for (int b = 0; b < sh.batch; ++b)
        for (int t = 0; t < sh.tokens; ++t)
          for (int h = 0; h < sh.heads; ++h) {
            const size_t row = size_t(b) * sh.tokens + t;
            const int visible = start[b] + t + 1;
            const float* qh = q + (row * sh.heads + h) * sh.qk_dim;
            const size_t base = size_t(b) * sh.capacity;
            const size_t k_off = size_t(h / group) * sh.qk_dim,
                         v_off = size_t(h / group) * sh.v_dim;
            float mx = -std::numeric_limits<float>::infinity();
            for (int j = 0; j < visible; ++j) {
              const float* kj = keys + (base + j) * sh.key_stride + k_off;
              float dot = 0;
#pragma omp simd reduction(+ : dot)
              for (int i = 0; i < sh.qk_dim; ++i) dot += qh[i] * kj[i];
              scores[size_t(j)] = dot * scale;
              mx = std::max(mx, scores[size_t(j)]);
            }
            float sum = 0;
            for (int j = 0; j < visible; ++j)
              sum += (scores[size_t(j)] = std::exp(scores[size_t(j)] - mx));
            float* o = out + (row * sh.heads + h) * sh.v_dim;
            std::fill(o, o + sh.v_dim, 0.0f);
            for (int j = 0; j < visible; ++j) {
              const float p = scores[size_t(j)] / sum;
              const float* vj = values + (base + j) * sh.value_stride + v_off;
#pragma omp simd
              for (int i = 0; i < sh.v_dim; ++i) o[i] += p * vj[i];
            }
          }
    }
  }

  void gelu_forward(const float* x, size_t n, float* out) override {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; ++i) {
      const float u = x[i];
      out[i] = 0.5f * u * (1.0f + cpu::fast_tanh(kGeluK * (u + kGeluC * u * u * u)));
    }
  }
  void gelu_backward(const float* dout, const float* x, size_t n, float* dx) override {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; ++i) {
      const float u = x[i];
      const float t = cpu::fast_tanh(kGeluK * (u + kGeluC * u * u * u));
      const float dt = (1.0f - t * t) * kGeluK * (1.0f + 3.0f * kGeluC * u * u);
      dx[i] = dout[i] * (0.5f * (1.0f + t) + 0.5f * u * dt);
    }
  }
  void swiglu_forward(const float* gate, const float* up, size_t n, float* out) override {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; ++i) out[i] = gate[i] * cpu::fast_sigmoid(gate[i]) * up[i];
  }
  void swiglu_backward(const float* dout, const float* gate, const float* up, size_t n,
                       float* dgate, float* dup) override {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; ++i) {
      const float g = gate[i], sg = cpu::fast_sigmoid(g);
      dup[i] = dout[i] * g * sg;
      dgate[i] = dout[i] * up[i] * sg * (1.0f + g * (1.0f - sg));
    }
  }

  void softmax_cross_entropy(float* logits, int ld, const int32_t* targets, size_t rows, int vocab,
                             float* losses, float grad_scale) override {
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; ++r) {
      float* row = logits + r * size_t(ld);
      const int32_t target = targets[r];
      float mx = row[0];
#pragma omp simd reduction(max : mx)
      for (int j = 0; j < vocab; ++j) mx = std::max(mx, row[j]);
      const float target_logit = row[target];
      float sum = 0;
      if (grad_scale != 0.0f) {
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < vocab; ++j) {
          row[j] = cpu::fast_exp(row[j] - mx);
          sum += row[j];
        }
        const float k = grad_scale / sum;
#pragma omp simd
        for (int j = 0; j < vocab; ++j) row[j] *= k;
        row[target] -= grad_scale;
      } else {
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < vocab; ++j) sum += cpu::fast_exp(row[j] - mx);
      }
      losses[r] = std::log(sum) + mx - target_logit;
    }
  }

  void copy_block(const float* src, int ld_src, float* dst, int ld_dst, size_t rows, int cols,
                  bool accumulate) override {
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; ++r) {
      const float* s = src + r * ld_src;
      float* d = dst + r * ld_dst;
      if (accumulate) {
#pragma omp simd
        for (int c = 0; c < cols; ++c) d[c] += s[c];
      } else {
        std::memcpy(d, s, size_t(cols) * sizeof(float));
      }
    }
  }
  void moe_route(const float* logits, size_t n, int E, int K, float* probs, int32_t* slot_token,
                 float* slot_gate, int32_t* token_slot, int32_t* expert_offset,
                 float* expert_stats) override {
    std::vector<int32_t> choice(n * K);  // expert of each (token, k)
    std::vector<float> gate(n * K);
    std::vector<int> order(E);
    for (size_t t = 0; t < n; ++t) {
      const float* row = logits + t * E;
      const float mx = *std::max_element(row, row + E);
      double sum = 0;
      for (int e = 0; e < E; ++e) sum += std::exp(double(row[e] - mx));
      for (int e = 0; e < E; ++e) probs[t * E + e] = float(std::exp(double(row[e] - mx)) / sum);
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + K, order.end(), [&](int x, int y) {
        return row[x] > row[y] || (row[x] == row[y] && x < y);
      });
      double gsum = 0;
      for (int k = 0; k < K; ++k) gsum += std::exp(double(row[order[k]] - row[order[0]]));
      for (int k = 0; k < K; ++k) {
        choice[t * K + k] = order[k];
        gate[t * K + k] = float(std::exp(double(row[order[k]] - row[order[0]])) / gsum);
      }
    }
    // Slots grouped by expert, tokens ascending within an expert (a stable counting sort).
    std::vector<int32_t> count(E, 0);
    for (int32_t e : choice) ++count[size_t(e)];
    expert_offset[0] = 0;
    for (int e = 0; e < E; ++e) expert_offset[e + 1] = expert_offset[e] + count[size_t(e)];
    std::vector<int32_t> next(expert_offset, expert_offset + E);
    for (size_t i = 0; i < n * K; ++i) {
      const int32_t s = next[size_t(choice[i])]++;
      slot_token[s] = int32_t(i / K);
      slot_gate[s] = gate[i];
      token_slot[i] = s;
    }
    for (int e = 0; e < E; ++e) {
      double mean_p = 0;
      for (size_t t = 0; t < n; ++t) mean_p += probs[t * E + e];
      expert_stats[e] = float(double(count[size_t(e)]) / double(n * K));
      expert_stats[E + e] = float(mean_p / double(n));
    }
  }
  void moe_router_backward(const float* dgate, const float* slot_gate, const int32_t* token_slot,
                           const int32_t* expert_offset, const float* probs,
                           const float* expert_stats, size_t n, int E, int K, float aux_scale,
                           float* dlogits) override {
    auto expert_of = [&](int32_t slot) {
      return int(std::upper_bound(expert_offset, expert_offset + E + 1, slot) - expert_offset) - 1;
    };
    for (size_t t = 0; t < n; ++t) {
      float* d = dlogits + t * E;
      std::fill_n(d, E, 0.0f);
      double weighted = 0;
      for (int k = 0; k < K; ++k) {
        const int32_t s = token_slot[t * K + k];
        weighted += double(slot_gate[s]) * dgate[s];
      }
      for (int k = 0; k < K; ++k) {
        const int32_t s = token_slot[t * K + k];
        d[expert_of(s)] += float(slot_gate[s] * (dgate[s] - weighted));
      }
      // d aux / d p_{t,i} = aux_scale·share_i, through the full softmax.
      const float* pr = probs + t * E;
      double dot = 0;
      for (int i = 0; i < E; ++i) dot += double(pr[i]) * aux_scale * expert_stats[i];
      for (int j = 0; j < E; ++j) d[j] += float(pr[j] * (aux_scale * expert_stats[j] - dot));
    }
  }
  void gather_rows(const float* src, const int32_t* rows, size_t n, int dim, const float* row_scale,
                   float* dst) override {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; ++i) {
      const float* s = src + size_t(rows[i]) * dim;
      float* d = dst + i * dim;
      const float k = row_scale ? row_scale[i] : 1.0f;
#pragma omp simd
      for (int c = 0; c < dim; ++c) d[c] = k * s[c];
    }
  }
  void scatter_add_rows(const float* src, const int32_t* rows, size_t n, int dim,
                        const float* row_scale, float* dst) override {
    // Parallel over feature columns: rows that repeat never race, and the order stays fixed.
#pragma omp parallel for schedule(static)
    for (int c0 = 0; c0 < dim; c0 += 16) {
      const int c1 = std::min(dim, c0 + 16);
      for (size_t i = 0; i < n; ++i) {
        const float k = row_scale ? row_scale[i] : 1.0f;
        const float* s = src + i * dim;
        float* d = dst + size_t(rows[i]) * dim;
        for (int c = c0; c < c1; ++c) d[c] += k * s[c];
      }
    }
  }
  void scatter_rows(const float* src, const int32_t* rows, size_t n, int dim, float* dst) override {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; ++i)
      std::copy(src + i * dim, src + (i + 1) * dim, dst + size_t(rows[i]) * dim);
  }
  void argmax_rows(const float* x, size_t rows, int cols, int32_t* out) override {
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; ++r) {
      const float* row = x + r * cols;
      out[r] = int32_t(std::max_element(row, row + cols) - row);  // first of equal maxima
    }
  }
  void rowwise_dot(const float* a, const float* b, size_t n, int dim, float* out) override {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; ++i) {
      float acc = 0;
#pragma omp simd reduction(+ : acc)
      for (int c = 0; c < dim; ++c) acc += a[i * dim + c] * b[i * dim + c];
      out[i] = acc;
    }
  }

  void adamw_step(float* param, const float* grad, float* m, float* v, size_t n, float lr,
                  float beta1, float beta2, float eps, float weight_decay, float bc1,
                  float bc2) override {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; ++i) {
      m[i] = beta1 * m[i] + (1.0f - beta1) * grad[i];
      v[i] = beta2 * v[i] + (1.0f - beta2) * grad[i] * grad[i];
      const float update = (m[i] / bc1) / (std::sqrt(v[i] / bc2) + eps);
      param[i] -= lr * (update + weight_decay * param[i]);
    }
  }
  double adam_moments_update_rms(const float* grad, float* m, float* v, size_t n, float beta1,
                                 float beta2, float eps, float bc1, float bc2) override {
    const double sum = ordered_chunk_sum(n, [&](size_t b, size_t e) {
      double s = 0;
      for (size_t i = b; i < e; ++i) {
        m[i] = beta1 * m[i] + (1.0f - beta1) * grad[i];
        v[i] = beta2 * v[i] + (1.0f - beta2) * grad[i] * grad[i];
        const double u = (m[i] / bc1) / (std::sqrt(v[i] / bc2) + eps);
        s += u * u;
      }
      return s;
    });
    return std::sqrt(sum / double(n));
  }
  void momentum_step(const float* grad, float* buf, float* out, size_t n, float mu,
                     bool nesterov) override {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; ++i) {
      buf[i] = mu * buf[i] + grad[i];
      out[i] = nesterov ? grad[i] + mu * buf[i] : buf[i];
    }
  }
  void polar_factor_exact(const float* mat, int rows, int cols, float* out) override {
    // Row-major (rows, cols) is column-major (cols, rows) = Aᵀ. With Aᵀ = U S Vᵀ, the polar
    // factor of Aᵀ is U Vᵀ, and its column-major storage read row-major is polar(A).
    const int m = cols, n = rows, k = std::min(m, n);
    std::vector<double> a(mat, mat + size_t(rows) * cols), s(k), u(size_t(m) * k),
        vt(size_t(k) * n);
    int info = 0, lwork = -1;
    double query = 0;
    dgesvd_("S", "S", &m, &n, a.data(), &m, s.data(), u.data(), &m, vt.data(), &k, &query, &lwork,
            &info);
    lwork = int(query);
    std::vector<double> work(lwork);
    dgesvd_("S", "S", &m, &n, a.data(), &m, s.data(), u.data(), &m, vt.data(), &k, work.data(),
            &lwork, &info);
    if (info != 0)
      throw std::runtime_error("polar_factor_exact: dgesvd failed, info=" + std::to_string(info));
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < m; ++i) {
        double acc = 0;
        for (int l = 0; l < k; ++l) acc += u[size_t(l) * m + i] * vt[size_t(j) * k + l];
        out[size_t(j) * m + i] = float(acc);
      }
  }

 private:
  void* allocate_bytes(size_t bytes) {
    void* p = std::aligned_alloc(64, ((bytes + 63) / 64) * 64);
    if (!p) {
      char message[200];
      std::snprintf(
          message, sizeof message,
          "out of host memory: allocating %.1f MiB failed; this run holds %.1f MiB (peak %.1f MiB)",
          bytes / 1048576.0, bytes_in_use() / 1048576.0, peak_bytes() / 1048576.0);
      throw OutOfMemory(message);
    }
    note_allocated(bytes);
    return p;
  }
  int threads_;
  std::vector<float> widened_a_, widened_b_;  // gemm_bf16's operands in fp32
  std::vector<double> norm_partials_;         // scale_to_inverse_norm's chunk sums
  std::vector<float> norm_factors_;           // and its factor per block
  // target[i] += sum over rows of term(r, i); parallel over columns so there is no race and the
  // summation order is fixed.
  template <typename Term>
  static void accumulate_column_sums(size_t rows, int dim, float* target, Term&& term) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < dim; ++i) {
      float acc = 0;
      for (size_t r = 0; r < rows; ++r) acc += term(r, i);
      target[i] += acc;
    }
  }
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads) {
  return std::make_unique<CpuBackend>(threads);
}

}  // namespace trainer_core
