// The CUDA backend: the Backend contract (backend.h) on one NVIDIA GPU.
//
// Precision: parameters, gradients, optimizer state and activations are stored in fp32; every
// GEMM (linear layers, attention, Newton-Schulz) runs on the tensor cores in bf16 with fp32
// accumulation (cuBLAS compute type CUBLAS_COMPUTE_32F_FAST_16BF: inputs rounded to bf16 inside
// cuBLAS, products summed in fp32, results written in fp32). Keeping activations in fp32 costs
// memory against bf16 storage but keeps one code path for both backends; see the README.
//
// Attention: the contract keeps only each row's log-sum-exp (lse) for the backward, so a layer
// holds O(seq) instead of O(heads·seq²) between its forward and backward. This mirror still
// materializes one sequence's scores at a time in scratch (heads·seq², reused across layers and
// sequences): forward = a strided-batched bf16 GEMM over the heads (Q Kᵀ, scaled), one fused
// kernel for mask + softmax that also writes lse (a warp per query row), a second batched GEMM
// (P V); backward = the scores again, P from lse, batched GEMMs for dP and dV, the fused softmax
// backward, batched GEMMs for dQ and dK. CudaAttention::kFused runs our flash-attention kernels
// instead (flash_attention.h), which never write the scores; they are opt-in until they have
// passed the GPU tests on a GPU. The CPU backend's tiled attention is the reference of both.
//
// Every method runs on this backend's own stream, after making its device current (ranks of a
// data-parallel job drive their devices from their own threads). Host-side results (reductions,
// downloads) synchronize the stream.
#include "trainer_core/backend/cuda/cuda_backend.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "trainer_core/backend/cpu/cpu_backend.h"
#include "trainer_core/backend/cuda/cuda_check.h"
#include "trainer_core/backend/cuda/cuda_kernels.h"
#include "trainer_core/backend/cuda/cuda_stream.h"
#include "trainer_core/backend/cuda/flash_attention.h"

namespace trainer_core {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

cublasOperation_t to_cublas(Transpose t) {
  return t == Transpose::kYes ? CUBLAS_OP_T : CUBLAS_OP_N;
}

class CudaBackend final : public Backend {
 public:
  cudaStream_t stream() const { return stream_; }  // every method enqueues here
  CudaBackend(int device, CudaAttention attention) : device_(device), attention_kernel_(attention) {
    int count = 0;
    TC_CUDA_CHECK(cudaGetDeviceCount(&count));
    if (device < 0 || device >= count)
      throw std::runtime_error("backend 'cuda': device " + std::to_string(device) +
                               " does not exist (" + std::to_string(count) + " visible)");
    TC_CUDA_CHECK(cudaSetDevice(device_));
    TC_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    TC_CUBLAS_CHECK(cublasCreate(&cublas_));
    TC_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
    size_t free_bytes = 0;
    TC_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes_));
  }
  ~CudaBackend() override {
    cudaSetDevice(device_);
    cudaStreamSynchronize(stream_);
    for (Scratch* s : {&ints_a_, &moe_, &partials_, &columns_, &attention_, &row_dot_}) drop(*s);
    cublasDestroy(cublas_);
    cudaStreamDestroy(stream_);
  }
  std::string name() const override { return "cuda"; }
  void bind_thread() override { on_device(); }
  void synchronize() override {
    on_device();
    TC_CUDA_CHECK(cudaStreamSynchronize(stream_));
    sample_device_use();
  }
  size_t device_peak_bytes() const override { return std::max(device_peak_, peak_bytes()); }
  // A sixteenth of the device's memory: on an 80 GiB GPU every micro-batch of GPT-2-vocabulary
  // logits fits in one chunk (8 x 1024 tokens: 1.6 GB), so the embedding is read once, not 25x.
  size_t logit_budget_floats() const override { return device_logit_budget_floats(total_bytes_); }

  float* allocate(size_t count) override {
    return static_cast<float*>(device_malloc(count * sizeof(float)));
  }
  void release(float* data, size_t count) override { device_free(data, count * sizeof(float)); }
  void upload(float* dst, const float* src, size_t n) override {
    on_device();
    TC_CUDA_CHECK(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyHostToDevice, stream_));
  }
  void download(float* dst, const float* src, size_t n) override {
    on_device();
    TC_CUDA_CHECK(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToHost, stream_));
    TC_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  int32_t* allocate_ints(size_t count) override {
    return static_cast<int32_t*>(device_malloc(count * sizeof(int32_t)));
  }
  void release_ints(int32_t* data, size_t count) override {
    device_free(data, count * sizeof(int32_t));
  }
  Bf16* allocate_bf16(size_t count) override {
    return static_cast<Bf16*>(device_malloc(count * sizeof(Bf16)));
  }
  void release_bf16(Bf16* data, size_t count) override { device_free(data, count * sizeof(Bf16)); }
  void upload_ints(int32_t* dst, const int32_t* src, size_t n) override {
    on_device();
    if (n)
      TC_CUDA_CHECK(
          cudaMemcpyAsync(dst, src, n * sizeof(int32_t), cudaMemcpyHostToDevice, stream_));
  }
  void download_ints(int32_t* dst, const int32_t* src, size_t n) override {
    on_device();
    if (n)
      TC_CUDA_CHECK(
          cudaMemcpyAsync(dst, src, n * sizeof(int32_t), cudaMemcpyDeviceToHost, stream_));
    TC_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  void fill(float* x, size_t n, float value) override {
    on_device();
    cuda::fill(x, n, value, stream_);
  }
  void copy(const float* src, float* dst, size_t n) override {
    on_device();
    if (n)
      TC_CUDA_CHECK(
          cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, stream_));
  }
  void scale(float* x, size_t n, float alpha) override {
    on_device();
    cuda::scale(x, n, alpha, stream_);
  }
  void axpy(const float* x, float* y, size_t n, float alpha) override {
    on_device();
    cuda::axpy(x, y, n, alpha, stream_);
  }
  double sum_squares(const float* x, size_t n) override {
    on_device();
    cuda::sum_squares_partials(x, n, partials(), stream_);
    return sum_partials();
  }
  void scale_to_inverse_norm(float* x, size_t n, int count, double numerator, double norm_scale,
                             double eps) override {
    on_device();
    // Block after block on the one stream, so that they can share the partials buffer.
    for (int b = 0; b < count; ++b) {
      float* block = x + size_t(b) * n;
      cuda::sum_squares_partials(block, n, partials(), stream_);
      cuda::scale_by_partials_norm(block, n, partials(), numerator, norm_scale, eps, stream_);
    }
  }
  void transpose(const float* src, int rows, int cols, float* dst) override {
    on_device();
    cuda::transpose(src, rows, cols, dst, stream_);
  }
  void gemm(Transpose ta, Transpose tb, int m, int n, int k, float alpha, const float* a, int lda,
            const float* b, int ldb, float beta, float* c, int ldc) override {
    on_device();
    gemm_strided_batched(ta, tb, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1);
  }
  void gemm_strided_batched(Transpose ta, Transpose tb, int m, int n, int k, float alpha,
                            const float* a, int lda, long long stride_a, const float* b, int ldb,
                            long long stride_b, float beta, float* c, int ldc, long long stride_c,
                            int batch) override {
    on_device();
    if (m == 0 || n == 0) return;
    TC_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
        cublas_, to_cublas(tb), to_cublas(ta), n, m, k, &alpha, b, CUDA_R_32F, ldb, stride_b, a,
        CUDA_R_32F, lda, stride_a, &beta, c, CUDA_R_32F, ldc, stride_c, batch,
        CUBLAS_COMPUTE_32F_FAST_16BF, CUBLAS_GEMM_DEFAULT));
  }
  void to_bf16(const float* src, size_t n, Bf16* dst) override {
    on_device();
    cuda::to_bf16(src, n, reinterpret_cast<uint16_t*>(dst), stream_);
  }
  // bf16 operands read as such by the tensor cores (half the bytes of fp32 operands), products
  // summed in fp32 (CUBLAS_COMPUTE_32F), C in fp32.
  void gemm_bf16(Transpose ta, Transpose tb, int m, int n, int k, float alpha, const Bf16* a,
                 int lda, const Bf16* b, int ldb, float beta, float* c, int ldc) override {
    on_device();
    if (m == 0 || n == 0) return;
    TC_CUBLAS_CHECK(cublasGemmEx(cublas_, to_cublas(tb), to_cublas(ta), n, m, k, &alpha, b,
                                 CUDA_R_16BF, ldb, a, CUDA_R_16BF, lda, &beta, c, CUDA_R_32F, ldc,
                                 CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  }

  void embedding_forward(const int32_t* tokens, size_t n, const float* table, int dim,
                         float* out) override {
    on_device();
    cuda::embedding_forward(stage(ints_a_, tokens, n), n, table, dim, out, stream_);
  }
  void embedding_backward(const int32_t* tokens, size_t n, const float* dout, int dim,
                          float* dtable) override {
    on_device();
    cuda::embedding_backward(stage(ints_a_, tokens, n), n, dout, dim, dtable, stream_);
  }
  void rmsnorm_forward(const float* x, const float* gain, size_t rows, int dim, float eps,
                       float* out, float* rstd) override {
    on_device();
    cuda::rmsnorm_forward(x, gain, rows, dim, eps, out, rstd, stream_);
  }
  void rmsnorm_backward(const float* dout, const float* x, const float* gain, const float* rstd,
                        size_t rows, int dim, float* dx, float* dgain) override {
    on_device();
    cuda::rmsnorm_backward_dx(dout, x, gain, rstd, rows, dim, dx, stream_);
    cuda::accumulate_column_sums(cuda::ColumnTerm::kDoutXRstd, dout, x, nullptr, rstd, rows, dim,
                                 column_scratch(dim), dgain, stream_);
  }
  void layernorm_forward(const float* x, const float* gain, const float* bias, size_t rows, int dim,
                         float eps, float* out, float* mean, float* rstd) override {
    on_device();
    cuda::layernorm_forward(x, gain, bias, rows, dim, eps, out, mean, rstd, stream_);
  }
  void layernorm_backward(const float* dout, const float* x, const float* gain, const float* mean,
                          const float* rstd, size_t rows, int dim, float* dx, float* dgain,
                          float* dbias) override {
    on_device();
    cuda::layernorm_backward_dx(dout, x, gain, mean, rstd, rows, dim, dx, stream_);
    float* scratch = column_scratch(dim);
    cuda::accumulate_column_sums(cuda::ColumnTerm::kDoutXCenteredRstd, dout, x, mean, rstd, rows,
                                 dim, scratch, dgain, stream_);
    cuda::accumulate_column_sums(cuda::ColumnTerm::kDout, dout, x, mean, rstd, rows, dim, scratch,
                                 dbias, stream_);
  }
  void rope(float* x, const AttentionShape& sh, int rot_dims, const float* cos_table,
            const float* sin_table, bool inverse) override {
    on_device();
    cuda::rope(x, sh.batch, sh.seq, sh.heads, sh.head_dim, rot_dims, cos_table, sin_table, inverse,
               stream_);
  }

  void attention_forward(const float* q, const float* k, const float* v, const AttentionShape& sh,
                         float* lse, float* out) override {
    on_device();
    if (fused(sh)) return cuda::flash_attention_forward(q, k, v, sh, lse, out, stream_);
    constexpr Transpose N = Transpose::kNo, T = Transpose::kYes;
    const int S = sh.seq, hd = sh.head_dim, ld = sh.row_stride(), H = sh.heads;
    const long long head = hd, square = (long long)S * S;
    const float scale = 1.0f / std::sqrt(float(hd));
    float* p = static_cast<float*>(grow(attention_, size_t(H) * square * sizeof(float)));
    for (int b = 0; b < sh.batch; ++b) {
      const size_t base = size_t(b) * S * ld;
      gemm_strided_batched(N, T, S, S, hd, scale, q + base, ld, head, k + base, ld, head, 0.0f, p,
                           S, square, H);
      cuda::causal_softmax_rows(p, size_t(H) * S, S, lse + size_t(b) * H * S, stream_);
      gemm_strided_batched(N, N, S, hd, S, 1.0f, p, S, square, v + base, ld, head, 0.0f, out + base,
                           ld, head, H);
    }
  }
  void cached_attention(const float* q, const float* keys, const float* values,
                        const int32_t* start, const CacheShape& shape, float scale,
                        float* out) override {
    on_device();
    // 48 KiB per block without an opt-in, the kernel's static arrays included.
    if (cuda::cached_attention_shared_bytes(shape) > cuda::cached_attention_dynamic_limit())
      throw std::invalid_argument(
          "cached_attention: query and value heads of " + std::to_string(shape.qk_dim) + " and " +
          std::to_string(shape.v_dim) + " floats exceed the kernel's 48 KiB of shared memory");
    cuda::cached_attention(q, keys, values, start, shape, scale, out, stream_);
  }
  void attention_backward(const float* dout, const float* q, const float* k, const float* v,
                          const float* out, const float* lse, const AttentionShape& sh, float* dq,
                          float* dk, float* dv) override {
    on_device();
    if (fused(sh)) {
      float* row_dot =
          static_cast<float*>(grow(row_dot_, size_t(sh.batch) * sh.seq * sh.heads * sizeof(float)));
      return cuda::flash_attention_backward(dout, q, k, v, out, lse, sh, row_dot, dq, dk, dv,
                                            stream_);
    }
    // Materialized: rowsum(P ∘ dP) is taken from P here, not from out.
    constexpr Transpose N = Transpose::kNo, T = Transpose::kYes;
    const int S = sh.seq, hd = sh.head_dim, ld = sh.row_stride(), H = sh.heads;
    const long long head = hd, square = (long long)S * S;
    const float scale = 1.0f / std::sqrt(float(hd));
    // P and dS for one sequence's heads at a time.
    float* p = static_cast<float*>(grow(attention_, 2 * size_t(H) * square * sizeof(float)));
    float* ds = p + size_t(H) * square;
    for (int b = 0; b < sh.batch; ++b) {
      const size_t base = size_t(b) * S * ld;
      gemm_strided_batched(N, T, S, S, hd, scale, q + base, ld, head, k + base, ld, head, 0.0f, p,
                           S, square, H);
      cuda::causal_probs_from_lse(p, lse + size_t(b) * H * S, size_t(H) * S, S, stream_);
      gemm_strided_batched(N, T, S, S, hd, 1.0f, dout + base, ld, head, v + base, ld, head, 0.0f,
                           ds, S, square, H);  // dP
      gemm_strided_batched(T, N, S, hd, S, 1.0f, p, S, square, dout + base, ld, head, 0.0f,
                           dv + base, ld, head, H);  // dV
      cuda::causal_softmax_backward_rows(p, ds, size_t(H) * S, S, scale, stream_);
      gemm_strided_batched(N, N, S, hd, S, 1.0f, ds, S, square, k + base, ld, head, 0.0f, dq + base,
                           ld, head, H);  // dQ
      gemm_strided_batched(T, N, S, hd, S, 1.0f, ds, S, square, q + base, ld, head, 0.0f, dk + base,
                           ld, head, H);  // dK
    }
  }

  void gelu_forward(const float* x, size_t n, float* out) override {
    on_device();
    cuda::gelu_forward(x, n, out, stream_);
  }
  void gelu_backward(const float* dout, const float* x, size_t n, float* dx) override {
    on_device();
    cuda::gelu_backward(dout, x, n, dx, stream_);
  }
  void swiglu_forward(const float* gate, const float* up, size_t n, float* out) override {
    on_device();
    cuda::swiglu_forward(gate, up, n, out, stream_);
  }
  void swiglu_backward(const float* dout, const float* gate, const float* up, size_t n,
                       float* dgate, float* dup) override {
    on_device();
    cuda::swiglu_backward(dout, gate, up, n, dgate, dup, stream_);
  }
  void softmax_cross_entropy(float* logits, int ld, const int32_t* targets, size_t rows, int vocab,
                             float* losses, float grad_scale) override {
    on_device();
    cuda::softmax_cross_entropy(logits, ld, stage(ints_a_, targets, rows), rows, vocab, losses,
                                grad_scale, stream_);
  }

  void copy_block(const float* src, int ld_src, float* dst, int ld_dst, size_t rows, int cols,
                  bool accumulate) override {
    on_device();
    cuda::copy_block(src, ld_src, dst, ld_dst, rows, cols, accumulate, stream_);
  }
  void gather_rows(const float* src, const int32_t* rows, size_t n, int dim, const float* row_scale,
                   float* dst) override {
    on_device();
    cuda::gather_rows(src, rows, n, dim, row_scale, dst, stream_);
  }
  void scatter_add_rows(const float* src, const int32_t* rows, size_t n, int dim,
                        const float* row_scale, float* dst) override {
    on_device();
    cuda::scatter_add_rows(src, rows, n, dim, row_scale, dst, stream_);
  }
  void moe_route(const float* logits, size_t n, int experts, int top_k, float* probs,
                 int32_t* slot_token, float* slot_gate, int32_t* token_slot, int32_t* expert_offset,
                 float* expert_stats) override {
    on_device();
    const size_t slots = n * size_t(top_k);
    auto* choice = static_cast<int32_t*>(grow(moe_, slots * (sizeof(int32_t) + sizeof(float))));
    auto* gate = reinterpret_cast<float*>(choice + slots);
    cuda::moe_route(logits, n, experts, top_k, probs, choice, gate, slot_token, slot_gate,
                    token_slot, expert_offset, expert_stats, stream_);
  }
  void moe_router_backward(const float* dgate, const float* slot_gate, const int32_t* token_slot,
                           const int32_t* expert_offset, const float* probs,
                           const float* expert_stats, size_t n, int experts, int top_k,
                           float aux_scale, float* dlogits) override {
    on_device();
    cuda::moe_router_backward(dgate, slot_gate, token_slot, expert_offset, probs, expert_stats, n,
                              experts, top_k, aux_scale, dlogits, stream_);
  }
  void scatter_rows(const float* src, const int32_t* rows, size_t n, int dim, float* dst) override {
    on_device();
    cuda::scatter_rows(src, rows, n, dim, dst, stream_);
  }
  void argmax_rows(const float* x, size_t rows, int cols, int32_t* out) override {
    on_device();
    cuda::argmax_rows(x, rows, cols, out, stream_);
  }
  void rowwise_dot(const float* a, const float* b, size_t n, int dim, float* out) override {
    on_device();
    cuda::rowwise_dot(a, b, n, dim, out, stream_);
  }

  void adamw_step(float* param, const float* grad, float* m, float* v, size_t n, float lr,
                  float beta1, float beta2, float eps, float weight_decay, float bc1,
                  float bc2) override {
    on_device();
    cuda::adamw_step(param, grad, m, v, n, lr, beta1, beta2, eps, weight_decay, bc1, bc2, stream_);
  }
  double adam_moments_update_rms(const float* grad, float* m, float* v, size_t n, float beta1,
                                 float beta2, float eps, float bc1, float bc2) override {
    on_device();
    cuda::adam_moments_update_partials(grad, m, v, n, beta1, beta2, eps, bc1, bc2, partials(),
                                       stream_);
    return std::sqrt(sum_partials() / double(n));
  }
  void momentum_step(const float* grad, float* buf, float* out, size_t n, float mu,
                     bool nesterov) override {
    on_device();
    cuda::momentum_step(grad, buf, out, n, mu, nesterov, stream_);
  }
  // Reference quality only (the "svd" ablation): the SVD runs on the host in fp64.
  void polar_factor_exact(const float* m, int rows, int cols, float* out) override {
    const size_t n = size_t(rows) * cols;
    std::vector<float> host(n), result(n);
    download(host.data(), m, n);
    make_cpu_backend(0)->polar_factor_exact(host.data(), rows, cols, result.data());
    upload(out, result.data(), n);
  }

 private:
  // A device buffer that only grows; counted in the memory high-water mark like any tensor.
  struct Scratch {
    void* data = nullptr;
    size_t bytes = 0;
  };
  size_t device_peak_ = 0;
  size_t total_bytes_ = 0;  // the device's memory

  void on_device() const { TC_CUDA_CHECK(cudaSetDevice(device_)); }

  void* device_malloc(size_t bytes) {
    on_device();
    void* p = nullptr;
    const cudaError_t status = cudaMalloc(&p, std::max<size_t>(bytes, 1));
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      size_t free_bytes = 0, total_bytes = 0;
      cudaMemGetInfo(&free_bytes, &total_bytes);
      char message[320];
      std::snprintf(
          message, sizeof message,
          "CUDA out of memory on device %d: cudaMalloc of %.1f MiB failed; this run holds %.1f MiB "
          "(peak %.1f MiB), the device has %.1f MiB free of %.1f MiB. Use a smaller "
          "training.micro_batch or model.",
          device_, bytes / kMiB, bytes_in_use() / kMiB, peak_bytes() / kMiB, free_bytes / kMiB,
          total_bytes / kMiB);
      throw cuda::OutOfMemory(message);
    }
    TC_CUDA_CHECK(status);
    note_allocated(bytes);
    sample_device_use();
    return p;
  }
  void device_free(void* data, size_t bytes) {
    cudaSetDevice(device_);
    cudaStreamSynchronize(stream_);  // no queued kernel still reads it
    cudaFree(data);                  // never throws: called from destructors
    note_released(bytes);
  }
  // The device's used memory as the driver counts it (total − free): this process's tensors,
  // context, cuBLAS workspace and NCCL buffers, and, on a shared GPU, other processes' memory.
  void sample_device_use() {
    size_t free_bytes = 0, total_bytes = 0;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess)
      device_peak_ = std::max(device_peak_, total_bytes - free_bytes);
  }
  void* grow(Scratch& s, size_t bytes) {
    if (s.bytes < bytes) {
      drop(s);
      s.data = device_malloc(bytes);
      s.bytes = bytes;
    }
    return s.data;
  }
  void drop(Scratch& s) {
    if (!s.data) return;
    cudaStreamSynchronize(stream_);
    cudaFree(s.data);
    note_released(s.bytes);
    s = Scratch{};
  }
  // Copies host ints to the device in stream order (the previous user of `s` has finished by then).
  const int32_t* stage(Scratch& s, const int32_t* host, size_t n) {
    auto* d = static_cast<int32_t*>(grow(s, n * sizeof(int32_t)));
    if (n)
      TC_CUDA_CHECK(cudaMemcpyAsync(d, host, n * sizeof(int32_t), cudaMemcpyHostToDevice, stream_));
    return d;
  }
  double* partials() {
    return static_cast<double*>(grow(partials_, cuda::kReductionBlocks * sizeof(double)));
  }
  double sum_partials() {
    double host[cuda::kReductionBlocks];
    TC_CUDA_CHECK(
        cudaMemcpyAsync(host, partials_.data, sizeof host, cudaMemcpyDeviceToHost, stream_));
    TC_CUDA_CHECK(cudaStreamSynchronize(stream_));
    double total = 0;
    for (double p : host) total += p;  // fixed order: deterministic
    return total;
  }
  float* column_scratch(int dim) {
    return static_cast<float*>(grow(columns_, size_t(cuda::kColumnChunks) * dim * sizeof(float)));
  }

  // Row-major C = alpha op(A) op(B) + beta C for `batch` matrices at the given strides. cuBLAS is
  // column-major, so it computes Cᵀ = op(B)ᵀ op(A)ᵀ: the operands swap, the transposes stay.

  // Whether this shape runs the fused kernels (CudaAttention::kFused and a supported head dim).
  bool fused(const AttentionShape& sh) const {
    return attention_kernel_ == CudaAttention::kFused &&
           cuda::flash_attention_supported(sh.head_dim, device_);
  }

  int device_;
  CudaAttention attention_kernel_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  Scratch ints_a_;  // staged token ids / targets
  Scratch moe_;     // each token's chosen experts and gates, before grouping
  Scratch partials_, columns_, attention_;
  Scratch row_dot_;  // fused attention's backward: rowsum(dout ∘ out) per query row and head
};

}  // namespace

cudaStream_t cuda_stream_of(Backend& backend) {
  auto* cuda = dynamic_cast<CudaBackend*>(&backend);
  if (!cuda) throw std::invalid_argument("the " + backend.name() + " backend has no CUDA stream");
  return cuda->stream();
}

std::unique_ptr<Backend> make_cuda_backend(int device, CudaAttention attention) {
  return std::make_unique<CudaBackend>(device, attention);
}

}  // namespace trainer_core
