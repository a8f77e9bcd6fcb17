// The operations the model and the optimizers are written against. The CPU backend is the
// fp32 reference; the CUDA backend implements the same contract on the GPU.
//
// Conventions every implementation keeps:
// - Matrices are row-major. A weight of a linear layer is stored (out, in): y = x Wᵀ.
// - Activations are laid out (tokens, features); attention inputs are (batch, seq, heads*head_dim).
// - "_backward" ops ADD into parameter gradients (dgain, dtable, ...) and into dx when named
//   "accumulate"; every other output is overwritten. This lets residual branches sum their
//   gradients without extra buffers.
// - Token ids and row indices (int32) are host pointers; a device backend stages them itself.
//   Every float pointer, row scales included, is backend memory.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace trainer_core {

// An allocation the machine cannot satisfy (host or device memory). Its own type because it is a
// property of the config, not of the attempt: the job ends FAILED without retries (exit code
// kOutOfMemory), where other failures are retried.
class OutOfMemory : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class Transpose { kNo, kYes };

// bf16 storage: the upper 16 bits of an IEEE fp32 (sign, 8 exponent bits, 7 mantissa bits),
// rounded to nearest, ties to even. What the GEMMs of a bf16-precision model read.
struct Bf16 {
  uint16_t bits;
};

struct AttentionShape {
  int batch = 0;
  int seq = 0;
  int heads = 0;
  int head_dim = 0;
  int row_stride() const { return heads * head_dim; }
};

// Queries against a cache of keys and values (generation). Each of `batch` sequences brings
// `tokens` new queries at positions start[b], ..., start[b] + tokens - 1. The cache holds
// `capacity` positions per sequence; a row of keys (or values) holds kv_heads heads, with a
// stride of its own so that one buffer can carry both (MLA: [rotated key | latent], the latent
// doubling as the value). Query head h reads kv head h / (heads / kv_heads).
struct CacheShape {
  int batch = 0;
  int tokens = 0;
  int heads = 0;
  int kv_heads = 0;
  int qk_dim = 0;
  int v_dim = 0;
  int capacity = 0;
  int key_stride = 0;    // floats from one cached position's keys to the next
  int value_stride = 0;  // likewise for values
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // Called by a thread before it drives this backend (each data-parallel rank has its own): the
  // CPU backend sizes the thread's OpenMP team, the CUDA backend makes its device current.
  virtual void bind_thread() {}
  // Returns once all work enqueued so far has finished (timing on an asynchronous device).
  virtual void synchronize() {}

  // ---- memory: every allocation passes here, so the high-water mark is the peak-memory metric.
  virtual float* allocate(size_t count) = 0;
  virtual void release(float* data, size_t count) = 0;
  size_t bytes_in_use() const { return bytes_in_use_; }
  size_t peak_bytes() const { return peak_bytes_; }
  // The peak the run's summary reports: peak_bytes() plus what the device runtime holds beside
  // the tensors where there is such a thing (the CUDA context, cuBLAS's workspace, NCCL's
  // buffers), as the driver counts it at each allocation and synchronization.
  virtual size_t device_peak_bytes() const { return peak_bytes(); }
  // How many floats the LM head may hold as logits at once (the model computes them in chunks of
  // this many): small where memory is shared with everything else (64 MiB on the CPU, which
  // also keeps a chunk in cache), large on a GPU, where each chunk re-reads the whole embedding.
  virtual size_t logit_budget_floats() const { return size_t(16) << 20; }
  // A device backend's budget: a sixteenth of its memory, but never past 2^31 - 1 floats, so
  // every offset into a logits chunk fits the 32-bit ints of cuBLAS and of the kernels' indices
  // (a sixteenth of an H200's 141 GB is 2.2e9 floats).
  static size_t device_logit_budget_floats(size_t device_bytes) {
    return std::min(device_bytes / 16 / sizeof(float), size_t(2147483647));
  }
  void reset_peak() { peak_bytes_ = bytes_in_use_; }
  virtual void upload(float* device_dst, const float* host_src, size_t count) = 0;
  virtual void download(float* host_dst, const float* device_src, size_t count) = 0;
  // Integer buffers (routing indices) live on the backend too, counted in the same high-water mark.
  virtual int32_t* allocate_ints(size_t count) = 0;
  virtual void release_ints(int32_t* data, size_t count) = 0;
  virtual void upload_ints(int32_t* device_dst, const int32_t* host_src, size_t count) = 0;
  virtual void download_ints(int32_t* host_dst, const int32_t* device_src, size_t count) = 0;
  // bf16 buffers (GEMM operands of a bf16 model), counted in the same high-water mark.
  virtual Bf16* allocate_bf16(size_t count) = 0;
  virtual void release_bf16(Bf16* data, size_t count) = 0;

  // ---- elementwise and BLAS-like
  virtual void fill(float* x, size_t n, float value) = 0;
  virtual void copy(const float* src, float* dst, size_t n) = 0;
  virtual void scale(float* x, size_t n, float alpha) = 0;                 // x *= alpha
  virtual void axpy(const float* x, float* y, size_t n, float alpha) = 0;  // y += alpha x
  virtual double sum_squares(const float* x, size_t n) = 0;
  // x *= numerator / (norm_scale·‖x‖ + eps), with ‖x‖ = sqrt(sum_squares(x)) computed and applied
  // on the backend: no round trip to the host (Newton–Schulz normalizes every matrix of every Muon
  // step this way, and a device would otherwise synchronize once per matrix). x holds `count`
  // blocks of n floats one after another, each scaled by its own norm, exactly as alone (a stack
  // of matrices in one call).
  virtual void scale_to_inverse_norm(float* x, size_t n, int count, double numerator,
                                     double norm_scale, double eps) = 0;
  virtual void transpose(const float* src, int rows, int cols, float* dst) = 0;
  // C = alpha op(A) op(B) + beta C, with op(A) m x k and op(B) k x n.
  virtual void gemm(Transpose ta, Transpose tb, int m, int n, int k, float alpha, const float* a,
                    int lda, const float* b, int ldb, float beta, float* c, int ldc) = 0;
  // `batch` GEMMs in one call: C_i = alpha op(A_i) op(B_i) + beta C_i with A_i = a + i·stride_a,
  // B_i = b + i·stride_b, C_i = c + i·stride_c (per-head products: one launch, not one a head).
  virtual void gemm_strided_batched(Transpose ta, Transpose tb, int m, int n, int k, float alpha,
                                    const float* a, int lda, long long stride_a, const float* b,
                                    int ldb, long long stride_b, float beta, float* c, int ldc,
                                    long long stride_c, int batch) = 0;
  // dst = src rounded to bf16 (nearest, ties to even; a NaN stays a NaN).
  virtual void to_bf16(const float* src, size_t n, Bf16* dst) = 0;
  // gemm with bf16 A and B: every product of two bf16 values is exact in fp32, and the products
  // are summed in fp32 into an fp32 C (what tensor cores do with bf16 inputs).
  virtual void gemm_bf16(Transpose ta, Transpose tb, int m, int n, int k, float alpha,
                         const Bf16* a, int lda, const Bf16* b, int ldb, float beta, float* c,
                         int ldc) = 0;

  // ---- model operations
  virtual void embedding_forward(const int32_t* tokens, size_t n, const float* table, int dim,
                                 float* out) = 0;
  virtual void embedding_backward(const int32_t* tokens, size_t n, const float* dout, int dim,
                                  float* dtable) = 0;
  virtual void rmsnorm_forward(const float* x, const float* gain, size_t rows, int dim, float eps,
                               float* out, float* rstd) = 0;
  virtual void rmsnorm_backward(const float* dout, const float* x, const float* gain,
                                const float* rstd, size_t rows, int dim, float* dx_accumulate,
                                float* dgain) = 0;
  virtual void layernorm_forward(const float* x, const float* gain, const float* bias, size_t rows,
                                 int dim, float eps, float* out, float* mean, float* rstd) = 0;
  virtual void layernorm_backward(const float* dout, const float* x, const float* gain,
                                  const float* mean, const float* rstd, size_t rows, int dim,
                                  float* dx_accumulate, float* dgain, float* dbias) = 0;
  // Rotates pairs (i, i + rot_dims/2) of the first rot_dims features of each head by the angle
  // table (seq, rot_dims/2); inverse=true rotates back (the backward of a rotation).
  virtual void rope(float* x, const AttentionShape& shape, int rot_dims, const float* cos_table,
                    const float* sin_table, bool inverse) = 0;
  // Causal softmax attention that stores no probabilities (flash-style): the forward keeps only
  // each query row's log-sum-exp of its scaled scores, lse (batch, heads, seq), and the backward
  // recomputes the probabilities from q, k and lse, with rowsum(P ∘ dP) taken as dout · out.
  // What a layer keeps for its backward is O(batch·heads·seq), not O(batch·heads·seq²).
  virtual void attention_forward(const float* q, const float* k, const float* v,
                                 const AttentionShape& shape, float* lse, float* out) = 0;
  virtual void attention_backward(const float* dout, const float* q, const float* k, const float* v,
                                  const float* out, const float* lse, const AttentionShape& shape,
                                  float* dq, float* dk, float* dv) = 0;
  // Causal attention of new queries against a cache (CacheShape): q (batch·tokens, heads·qk_dim);
  // keys of sequence b at position j, kv head g: keys[(b·capacity + j)·key_stride + g·qk_dim];
  // values likewise (v_dim); out (batch·tokens, heads·v_dim). A query at position p reads
  // positions 0..p only: the cache beyond it may hold anything. start: backend memory (batch).
  virtual void cached_attention(const float* q, const float* keys, const float* values,
                                const int32_t* start, const CacheShape& shape, float scale,
                                float* out) = 0;
  virtual void gelu_forward(const float* x, size_t n, float* out) = 0;  // tanh approximation
  virtual void gelu_backward(const float* dout, const float* x, size_t n, float* dx) = 0;
  virtual void swiglu_forward(const float* gate, const float* up, size_t n, float* out) = 0;
  virtual void swiglu_backward(const float* dout, const float* gate, const float* up, size_t n,
                               float* dgate, float* dup) = 0;
  // Row-wise softmax cross-entropy on logits (rows, vocab), rows ld >= vocab floats apart (the
  // model aligns rows: ld = vocab rounded up to 64). Writes each row's loss (nats) to losses.
  // With grad_scale != 0 the logits are overwritten by grad_scale * (softmax - onehot); the
  // columns past vocab are not touched.
  virtual void softmax_cross_entropy(float* logits, int ld, const int32_t* targets, size_t rows,
                                     int vocab, float* losses, float grad_scale) = 0;

  // ---- layout and routing (latent attention, mixture of experts)
  // dst block (rows, cols) = src block [+ dst when accumulate]; leading dimensions in floats.
  virtual void copy_block(const float* src, int ld_src, float* dst, int ld_dst, size_t rows,
                          int cols, bool accumulate) = 0;
  // dst[i] = src[rows[i]] * (row_scale ? row_scale[i] : 1), i < n. rows: backend memory.
  virtual void gather_rows(const float* src, const int32_t* rows, size_t n, int dim,
                           const float* row_scale, float* dst) = 0;
  // dst[rows[i]] += src[i] * (row_scale ? row_scale[i] : 1), sequential in i (rows may repeat).
  virtual void scatter_add_rows(const float* src, const int32_t* rows, size_t n, int dim,
                                const float* row_scale, float* dst) = 0;
  // MoE routing of n tokens over E experts, on the backend (no round trip through the host):
  // probs (n, E) = the softmax of the router logits; each token's top_k experts (ties to the
  // lower index) with gates = the softmax of the chosen logits; the n·top_k slots grouped by
  // expert, tokens ascending within an expert: slot_token, slot_gate, expert_offset (E + 1);
  // token_slot[t·top_k + k] = the slot of the token's k-th choice; expert_stats (2E) = each
  // expert's share of the slots, then its mean probability over the tokens.
  virtual void moe_route(const float* logits, size_t n, int experts, int top_k, float* probs,
                         int32_t* slot_token, float* slot_gate, int32_t* token_slot,
                         int32_t* expert_offset, float* expert_stats) = 0;
  // dlogits (n, E) from dgate (per slot): through the gates, gate_s·(dgate_s − Σ_chosen gate·dgate)
  // at each chosen expert, plus the balance loss aux_scale·Σ_e share_e·p_e through the softmax.
  virtual void moe_router_backward(const float* dgate, const float* slot_gate,
                                   const int32_t* token_slot, const int32_t* expert_offset,
                                   const float* probs, const float* expert_stats, size_t n,
                                   int experts, int top_k, float aux_scale, float* dlogits) = 0;
  // dst[rows[i]] = src[i], i < n; rows distinct, backend memory (writing into a cache).
  virtual void scatter_rows(const float* src, const int32_t* rows, size_t n, int dim,
                            float* dst) = 0;
  // out[r] = the index of row r's largest value (the lowest index among equals); out: backend.
  virtual void argmax_rows(const float* x, size_t rows, int cols, int32_t* out) = 0;
  // out[i] = <a[i], b[i]> over dim.
  virtual void rowwise_dot(const float* a, const float* b, size_t n, int dim, float* out) = 0;

  // ---- optimizer operations
  // Decoupled AdamW on n values; bias corrections are passed in (1 - beta^t).
  virtual void adamw_step(float* param, const float* grad, float* m, float* v, size_t n, float lr,
                          float beta1, float beta2, float eps, float weight_decay,
                          float bias_correction1, float bias_correction2) = 0;
  // Adam moments only (m, v updated in place); returns RMS of m̂/(√v̂+eps).
  virtual double adam_moments_update_rms(const float* grad, float* m, float* v, size_t n,
                                         float beta1, float beta2, float eps,
                                         float bias_correction1, float bias_correction2) = 0;
  // buf = mu buf + grad; out = grad + mu buf (nesterov) or buf.
  virtual void momentum_step(const float* grad, float* buf, float* out, size_t n, float mu,
                             bool nesterov) = 0;
  // Exact polar factor U Vᵀ of a (rows, cols) matrix via SVD; reference quality, not fast.
  virtual void polar_factor_exact(const float* m, int rows, int cols, float* out) = 0;

 protected:
  void note_allocated(size_t bytes) {
    bytes_in_use_ += bytes;
    if (bytes_in_use_ > peak_bytes_) peak_bytes_ = bytes_in_use_;
  }
  void note_released(size_t bytes) { bytes_in_use_ -= bytes; }

 private:
  size_t bytes_in_use_ = 0;
  size_t peak_bytes_ = 0;
};

// The backend by name: "cpu" always; "cuda" where compiled in and a device is present (device:
// the CUDA device index, one per data-parallel rank). Throws std::runtime_error naming what is
// missing otherwise.
std::unique_ptr<Backend> make_backend(const std::string& name, int threads = 0, int device = 0);

// Owns a buffer of floats (Tensor), ints (IntTensor) or bf16 values (Bf16Tensor) on a backend
// (RAII); moves, never copies.
template <typename T>
class BackendBuffer {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, int32_t> || std::is_same_v<T, Bf16>);

 public:
  BackendBuffer() = default;
  BackendBuffer(Backend& backend, size_t count) : backend_(&backend), count_(count) {
    if (!count) return;
    if constexpr (std::is_same_v<T, float>)
      data_ = backend.allocate(count);
    else if constexpr (std::is_same_v<T, int32_t>)
      data_ = backend.allocate_ints(count);
    else
      data_ = backend.allocate_bf16(count);
  }
  ~BackendBuffer() { reset(); }
  BackendBuffer(BackendBuffer&& other) noexcept { *this = std::move(other); }
  BackendBuffer& operator=(BackendBuffer&& other) noexcept {
    if (this != &other) {
      reset();
      backend_ = other.backend_;
      data_ = other.data_;
      count_ = other.count_;
      other.data_ = nullptr;
      other.count_ = 0;
    }
    return *this;
  }
  BackendBuffer(const BackendBuffer&) = delete;
  BackendBuffer& operator=(const BackendBuffer&) = delete;

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return count_; }
  void reset() {
    if (data_) {
      if constexpr (std::is_same_v<T, float>)
        backend_->release(data_, count_);
      else if constexpr (std::is_same_v<T, int32_t>)
        backend_->release_ints(data_, count_);
      else
        backend_->release_bf16(data_, count_);
    }
    data_ = nullptr;
    count_ = 0;
  }

 private:
  Backend* backend_ = nullptr;
  T* data_ = nullptr;
  size_t count_ = 0;
};
using Tensor = BackendBuffer<float>;
using IntTensor = BackendBuffer<int32_t>;
using Bf16Tensor = BackendBuffer<Bf16>;

}  // namespace trainer_core
