// The CUDA backend against the CPU reference (label gpu). Every op runs on the same random inputs
// on both backends, forward and backward; then a whole training step, the optimizers, an
// out-of-memory, NCCL and a full run through the Trainer. Where no GPU or driver is present every
// test skips with the reason (as in CI).
//
// Tolerances (relative L2 error of the whole output): 1e-4 for fp32 kernels (the CPU uses fast
// exp/tanh approximations, the GPU expf/tanhf); 1.5e-2 where bf16 tensor-core GEMMs are involved
// (bf16 keeps 8 bits of mantissa: 2^-8 ≈ 4e-3 per product, partly averaged out in the sums).
#include "trainer_core/backend/cuda/cuda_backend.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <thread>

#include "../integration/test_configs.h"
#include "../token_batch.h"
#include "../unit/gradient_check.h"
#include "trainer_core/backend/backend.h"
#include "trainer_core/backend/cuda/cuda_check.h"
#include "trainer_core/backend/cuda/device_query.h"
#include "trainer_core/config/presets.h"
#include "trainer_core/model/generator.h"
#include "trainer_core/model/gpt.h"
#include "trainer_core/optim/optimizer.h"
#include "trainer_core/parallel/communicator.h"
#include "trainer_core/train/trainer.h"

using namespace trainer_core;
using test_util::relative_error;
using test_util::TokenBatch;

namespace {

constexpr double kFp32 = 1e-4, kBf16 = 1.5e-2;
constexpr Transpose N = Transpose::kNo, T = Transpose::kYes;

std::vector<float> random_values(size_t n, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// The GPU tests' token pattern (their tolerances were measured with it).
TokenBatch token_batch(const ModelConfig& m, int batch) {
  return test_util::token_batch(m, batch, {31, 7, 17, 3});
}

// One forward and backward of the same model on the CPU and on a GPU backend: the loss within
// 2e-3 and the gradients within 3e-2 (bf16 GEMMs).
void expect_same_forward_backward(Gpt& cpu_model, Gpt& gpu_model, Backend& gpu, int batch,
                                  const std::string& what) {
  const TokenBatch t = token_batch(cpu_model.config(), batch);
  cpu_model.zero_grads();
  gpu_model.zero_grads();
  const double cl = cpu_model.forward_backward(t.inputs.data(), t.targets.data(), batch, 1.0f);
  const double gl = gpu_model.forward_backward(t.inputs.data(), t.targets.data(), batch, 1.0f);
  EXPECT_NEAR(gl / cl, 1.0, 2e-3) << what << " loss";
  const size_t n = cpu_model.num_params();
  std::vector<float> cg(cpu_model.grads(), cpu_model.grads() + n), gg(n);
  gpu.download(gg.data(), gpu_model.grads(), n);
  EXPECT_LT(relative_error(gg, cg), 3e-2) << what << " gradients";
}

bool have_gpu() { return !list_cuda_devices().empty(); }
// A GPU that is present but unusable (an old driver) skips with that reason, which
// scripts/gpu-check.sh turns into a failure on a machine that has GPUs.
#define REQUIRE_GPU()                                                                      \
  if (!have_gpu())                                                                         \
  GTEST_SKIP()                                                                             \
      << (cuda_unusable_reason().empty()                                                   \
              ? "no CUDA device or driver on this machine: the GPU path is not exercised " \
                "here"                                                                     \
              : "GPU present but unusable: " + cuda_unusable_reason())

class CudaVsCpu : public ::testing::Test {
 protected:
  // The same values on both backends.
  struct Pair {
    Tensor cpu, gpu;
    size_t size;
  };

  void SetUp() override {
    REQUIRE_GPU();
    cpu_ = make_backend("cpu", 0);
    gpu_ = make_backend("cuda", 0, 0);
  }
  Pair pair(const std::vector<float>& host) {
    Pair p{Tensor(*cpu_, host.size()), Tensor(*gpu_, host.size()), host.size()};
    cpu_->upload(p.cpu.data(), host.data(), host.size());
    gpu_->upload(p.gpu.data(), host.data(), host.size());
    return p;
  }
  Pair random_pair(size_t n, uint64_t seed, float scale = 1.0f) {
    return pair(random_values(n, seed, scale));
  }
  Pair zeros(size_t n) { return pair(std::vector<float>(n, 0.0f)); }
  // Runs fn on the CPU backend with CPU buffers, then on the GPU with GPU buffers.
  void both(const std::function<void(Backend&, const std::function<float*(Pair&)>&)>& fn) {
    fn(*cpu_, [](Pair& p) { return p.cpu.data(); });
    fn(*gpu_, [](Pair& p) { return p.gpu.data(); });
  }
  // Indices on both backends (routing rows).
  struct IntPair {
    IntTensor cpu, gpu;
  };
  IntPair int_pair(const std::vector<int32_t>& host) {
    IntPair p{IntTensor(*cpu_, host.size()), IntTensor(*gpu_, host.size())};
    cpu_->upload_ints(p.cpu.data(), host.data(), host.size());
    gpu_->upload_ints(p.gpu.data(), host.data(), host.size());
    return p;
  }
  int32_t* on(Backend& be, IntPair& p) { return &be == cpu_.get() ? p.cpu.data() : p.gpu.data(); }
  void expect_same_ints(IntPair& p, const std::string& what) {
    std::vector<int32_t> ref(p.cpu.data(), p.cpu.data() + p.cpu.size()), got(p.gpu.size());
    gpu_->download_ints(got.data(), p.gpu.data(), got.size());
    EXPECT_EQ(ref, got) << what;
  }
  void expect_match(Pair& p, double tolerance, const std::string& what) {
    std::vector<float> ref(p.cpu.data(), p.cpu.data() + p.size), got(p.size);
    gpu_->download(got.data(), p.gpu.data(), p.size);
    for (float x : got) ASSERT_TRUE(std::isfinite(x)) << what << ": non-finite GPU output";
    EXPECT_LT(relative_error(got, ref), tolerance) << what;
  }

  std::unique_ptr<Backend> cpu_, gpu_;
};

TEST_F(CudaVsCpu, GemmInEveryTransposeCombination) {
  const int m = 67, n = 45, k = 129;
  for (Transpose ta : {N, T})
    for (Transpose tb : {N, T}) {
      Pair a = random_pair(size_t(m) * k, 1), b = random_pair(size_t(k) * n, 2),
           c = random_pair(size_t(m) * n, 3);
      const int lda = ta == N ? k : m, ldb = tb == N ? n : k;
      both([&](Backend& be, auto buf) {
        be.gemm(ta, tb, m, n, k, 0.7f, buf(a), lda, buf(b), ldb, 0.5f, buf(c), n);
      });
      expect_match(c, kBf16,
                   "gemm ta=" + std::to_string(int(ta)) + " tb=" + std::to_string(int(tb)));
    }
  // Four heads' blocks of one matrix in one call (MLA's per-head products).
  Pair a = random_pair(size_t(m) * 4 * k, 7), w = random_pair(size_t(4) * k * n, 8),
       c = zeros(size_t(m) * 4 * n);
  both([&](Backend& be, auto buf) {
    be.gemm_strided_batched(N, N, m, n, k, 1.0f, buf(a), 4 * k, k, buf(w), n, (long long)k * n,
                            0.0f, buf(c), 4 * n, n, 4);
  });
  expect_match(c, kBf16, "gemm_strided_batched");
}

// bf16 storage rounds the same bits on both backends (nearest even), and a GEMM of bf16 operands
// sums exact products in fp32 on both: only the summation order differs.
TEST_F(CudaVsCpu, Bf16RoundingAndBf16Gemm) {
  const int m = 67, n = 45, k = 129;
  Pair src = random_pair(size_t(m) * k, 4, 3.0f), b = random_pair(size_t(k) * n, 5);
  Bf16Tensor cpu_a(*cpu_, src.size), gpu_a(*gpu_, src.size), cpu_b(*cpu_, b.size),
      gpu_b(*gpu_, b.size);
  cpu_->to_bf16(src.cpu.data(), src.size, cpu_a.data());
  gpu_->to_bf16(src.gpu.data(), src.size, gpu_a.data());
  cpu_->to_bf16(b.cpu.data(), b.size, cpu_b.data());
  gpu_->to_bf16(b.gpu.data(), b.size, gpu_b.data());
  // The rounded values read back through a product with the identity, which is exact.
  std::vector<float> eye(size_t(k) * k, 0.0f);
  for (int i = 0; i < k; ++i) eye[size_t(i) * k + i] = 1.0f;
  Pair identity = pair(eye), widened = zeros(src.size);
  Bf16Tensor cpu_eye(*cpu_, eye.size()), gpu_eye(*gpu_, eye.size());
  cpu_->to_bf16(identity.cpu.data(), eye.size(), cpu_eye.data());
  gpu_->to_bf16(identity.gpu.data(), eye.size(), gpu_eye.data());
  cpu_->gemm_bf16(N, N, m, k, k, 1.0f, cpu_a.data(), k, cpu_eye.data(), k, 0.0f, widened.cpu.data(),
                  k);
  gpu_->gemm_bf16(N, N, m, k, k, 1.0f, gpu_a.data(), k, gpu_eye.data(), k, 0.0f, widened.gpu.data(),
                  k);
  expect_match(widened, 0.0 + 1e-12, "bf16 rounding, the same on both backends");
  std::vector<float> original(src.cpu.data(), src.cpu.data() + src.size), rounded(src.size);
  gpu_->download(rounded.data(), widened.gpu.data(), src.size);
  EXPECT_LT(relative_error(rounded, original), 0x1p-8) << "bf16 keeps 8 significant bits";
  EXPECT_GT(relative_error(rounded, original), 0.0) << "the values were rounded";
  for (Transpose ta : {N, T})
    for (Transpose tb : {N, T}) {
      Pair c = random_pair(size_t(m) * n, 6);
      const int lda = ta == N ? k : m, ldb = tb == N ? n : k;
      cpu_->gemm_bf16(ta, tb, m, n, k, 0.7f, cpu_a.data(), lda, cpu_b.data(), ldb, 0.5f,
                      c.cpu.data(), n);
      gpu_->gemm_bf16(ta, tb, m, n, k, 0.7f, gpu_a.data(), lda, gpu_b.data(), ldb, 0.5f,
                      c.gpu.data(), n);
      expect_match(c, kFp32,
                   "gemm_bf16 ta=" + std::to_string(int(ta)) + " tb=" + std::to_string(int(tb)));
    }
}

TEST_F(CudaVsCpu, ElementwiseReductionsAndTranspose) {
  const size_t n = 100003;
  Pair x = random_pair(n, 4), y = random_pair(n, 5), t = zeros(n);
  both([&](Backend& be, auto buf) {
    be.scale(buf(x), n, 1.5f);
    be.axpy(buf(x), buf(y), n, -0.25f);
    be.transpose(buf(y), 331, 302, buf(t));  // 331 * 302 < n: a ragged tile edge
  });
  expect_match(x, kFp32, "scale");
  expect_match(y, kFp32, "axpy");
  expect_match(t, kFp32, "transpose");
  EXPECT_NEAR(gpu_->sum_squares(y.gpu.data(), n) / cpu_->sum_squares(y.cpu.data(), n), 1.0, 1e-6);
  both([&](Backend& be, auto buf) { be.fill(buf(t), n, 0.125f); });
  expect_match(t, 0.0 + 1e-12, "fill");
  // The norm stays on the device; the result is the host-computed scaling's.
  both([&](Backend& be, auto buf) { be.scale_to_inverse_norm(buf(y), n, 1, 3.0, 1.02, 1e-6); });
  expect_match(y, kFp32, "scale_to_inverse_norm");
  EXPECT_NEAR(std::sqrt(gpu_->sum_squares(y.gpu.data(), n)), 3.0 / 1.02, 1e-4);
  // A stack of blocks (Newton-Schulz's matrices), each by its own norm: x's first 3 x 331.
  both([&](Backend& be, auto buf) { be.scale_to_inverse_norm(buf(x), 331, 3, 1.0, 1.0, 1e-7); });
  expect_match(x, kFp32, "scale_to_inverse_norm, 3 blocks");
}

TEST_F(CudaVsCpu, EmbeddingForwardAndBackwardWithRepeatedTokens) {
  const int vocab = 97, dim = 48;
  const size_t n = 300;
  std::vector<int32_t> tokens(n);
  for (size_t i = 0; i < n; ++i) tokens[i] = int32_t((i * 7) % 13);  // many repeats
  Pair table = random_pair(size_t(vocab) * dim, 6), out = zeros(n * dim),
       dout = random_pair(n * dim, 7), dtable = random_pair(size_t(vocab) * dim, 8);
  both([&](Backend& be, auto buf) {
    be.embedding_forward(tokens.data(), n, buf(table), dim, buf(out));
    be.embedding_backward(tokens.data(), n, buf(dout), dim, buf(dtable));
  });
  expect_match(out, kFp32, "embedding_forward");
  expect_match(dtable, kFp32, "embedding_backward");
}

TEST_F(CudaVsCpu, RmsNormAndLayerNormForwardAndBackward) {
  const size_t rows = 77;
  const int dim = 320;
  Pair x = random_pair(rows * dim, 9), gain = random_pair(dim, 10), bias = random_pair(dim, 11),
       dout = random_pair(rows * dim, 12);
  Pair out = zeros(rows * dim), rstd = zeros(rows), mean = zeros(rows),
       dx = random_pair(rows * dim, 13), dgain = random_pair(dim, 14), dbias = random_pair(dim, 15);
  both([&](Backend& be, auto buf) {
    be.rmsnorm_forward(buf(x), buf(gain), rows, dim, 1e-5f, buf(out), buf(rstd));
    be.rmsnorm_backward(buf(dout), buf(x), buf(gain), buf(rstd), rows, dim, buf(dx), buf(dgain));
  });
  expect_match(out, kFp32, "rmsnorm_forward");
  expect_match(rstd, kFp32, "rmsnorm rstd");
  expect_match(dx, kFp32, "rmsnorm_backward dx (accumulated)");
  expect_match(dgain, kFp32, "rmsnorm_backward dgain (accumulated)");
  both([&](Backend& be, auto buf) {
    be.layernorm_forward(buf(x), buf(gain), buf(bias), rows, dim, 1e-5f, buf(out), buf(mean),
                         buf(rstd));
    be.layernorm_backward(buf(dout), buf(x), buf(gain), buf(mean), buf(rstd), rows, dim, buf(dx),
                          buf(dgain), buf(dbias));
  });
  expect_match(out, kFp32, "layernorm_forward");
  expect_match(mean, kFp32, "layernorm mean");
  expect_match(dx, kFp32, "layernorm_backward dx");
  expect_match(dgain, kFp32, "layernorm_backward dgain");
  expect_match(dbias, kFp32, "layernorm_backward dbias");
}

TEST_F(CudaVsCpu, RopeAndItsInverse) {
  const AttentionShape sh{3, 17, 4, 16};
  const int rot = 8;
  Pair x = random_pair(size_t(sh.batch) * sh.seq * sh.row_stride(), 16);
  Pair cos_t = random_pair(size_t(sh.seq) * rot / 2, 17),
       sin_t = random_pair(size_t(sh.seq) * rot / 2, 18);
  both([&](Backend& be, auto buf) { be.rope(buf(x), sh, rot, buf(cos_t), buf(sin_t), false); });
  expect_match(x, kFp32, "rope");
  both([&](Backend& be, auto buf) { be.rope(buf(x), sh, rot, buf(cos_t), buf(sin_t), true); });
  expect_match(x, kFp32, "rope inverse");
}

TEST_F(CudaVsCpu, CausalAttentionForwardAndBackward) {
  const AttentionShape sh{2, 70, 3, 32};  // seq not a multiple of the warp size
  const size_t act = size_t(sh.batch) * sh.seq * sh.row_stride(),
               rows = size_t(sh.batch) * sh.heads * sh.seq;
  Pair q = random_pair(act, 19), k = random_pair(act, 20), v = random_pair(act, 21),
       dout = random_pair(act, 22);
  Pair lse = zeros(rows), out = zeros(act), dq = zeros(act), dk = zeros(act), dv = zeros(act);
  both([&](Backend& be, auto buf) {
    be.attention_forward(buf(q), buf(k), buf(v), sh, buf(lse), buf(out));
    be.attention_backward(buf(dout), buf(q), buf(k), buf(v), buf(out), buf(lse), sh, buf(dq),
                          buf(dk), buf(dv));
  });
  expect_match(lse, kBf16, "attention log-sum-exp");
  expect_match(out, kBf16, "attention out");
  expect_match(dq, kBf16, "attention dq");
  expect_match(dk, kBf16, "attention dk");
  expect_match(dv, kBf16, "attention dv");
}

// The fused flash-attention kernels (CudaAttention::kFused) against the CPU's tiled attention:
// sequences that end inside a tile, several tiles, head dims 64 and 128, a single token, and a
// head dim they do not take (48: the materialized path runs instead).
TEST_F(CudaVsCpu, FusedFlashAttentionForwardAndBackward) {
  auto fused = make_cuda_backend(0, CudaAttention::kFused);
  for (const AttentionShape sh : {AttentionShape{2, 70, 3, 64}, AttentionShape{1, 200, 2, 128},
                                  AttentionShape{2, 1, 2, 64}, AttentionShape{1, 130, 2, 48}}) {
    const size_t act = size_t(sh.batch) * sh.seq * sh.row_stride(),
                 rows = size_t(sh.batch) * sh.heads * sh.seq;
    Pair q = random_pair(act, 40), k = random_pair(act, 41), v = random_pair(act, 42),
         dout = random_pair(act, 43);
    Pair lse = zeros(rows), out = zeros(act), dq = random_pair(act, 44), dk = zeros(act),
         dv = zeros(act);  // dq starts non-zero: it must be overwritten
    auto run = [&](Backend& be, auto buf) {
      be.attention_forward(buf(q), buf(k), buf(v), sh, buf(lse), buf(out));
      be.attention_backward(buf(dout), buf(q), buf(k), buf(v), buf(out), buf(lse), sh, buf(dq),
                            buf(dk), buf(dv));
    };
    run(*cpu_, [](Pair& p) { return p.cpu.data(); });
    // The inputs were uploaded on the fixture backend's stream (non-blocking): finished before
    // the fused backend's own stream reads them, or it may read noise.
    gpu_->synchronize();
    run(*fused, [](Pair& p) { return p.gpu.data(); });  // buffers of the same device
    fused->synchronize();
    const std::string at = "batch " + std::to_string(sh.batch) + " seq " + std::to_string(sh.seq) +
                           " head_dim " + std::to_string(sh.head_dim) + ": ";
    expect_match(lse, kBf16, at + "fused attention log-sum-exp");
    expect_match(out, kBf16, at + "fused attention out");
    expect_match(dq, kBf16, at + "fused attention dq");
    expect_match(dk, kBf16, at + "fused attention dk");
    expect_match(dv, kBf16, at + "fused attention dv");
  }
}

// The fused kernels inside a whole model (head dim 64, a sequence over one tile): the training
// step's loss and gradients as on the CPU, within the bf16 GEMMs' tolerance.
TEST_F(CudaVsCpu, FusedFlashAttentionInAWholeTrainingStep) {
  auto fused = make_cuda_backend(0, CudaAttention::kFused);
  ModelConfig m = find_preset("micro")->model;
  m.hidden = 128;
  m.n_head = 2;  // head dim 64: the fused path
  m.seq_len = 96;
  Gpt cm(m, *cpu_), gm(m, *fused);
  cm.init_weights(6);
  gm.init_weights(6);
  expect_same_forward_backward(cm, gm, *fused, 2, "fused attention");
}

TEST_F(CudaVsCpu, ActivationsForwardAndBackward) {
  const size_t n = 50001;
  Pair x = random_pair(n, 23, 2.0f), up = random_pair(n, 24), dout = random_pair(n, 25);
  Pair out = zeros(n), dx = zeros(n), dup = zeros(n);
  both([&](Backend& be, auto buf) {
    be.gelu_forward(buf(x), n, buf(out));
    be.gelu_backward(buf(dout), buf(x), n, buf(dx));
  });
  expect_match(out, kFp32, "gelu_forward");
  expect_match(dx, kFp32, "gelu_backward");
  both([&](Backend& be, auto buf) {
    be.swiglu_forward(buf(x), buf(up), n, buf(out));
    be.swiglu_backward(buf(dout), buf(x), buf(up), n, buf(dx), buf(dup));
  });
  expect_match(out, kFp32, "swiglu_forward");
  expect_match(dx, kFp32, "swiglu_backward dgate");
  expect_match(dup, kFp32, "swiglu_backward dup");
}

// Rows padded to 50,304 floats, as the model lays out its logits.
TEST_F(CudaVsCpu, FusedCrossEntropyOverTheGpt2Vocabulary) {
  const size_t rows = 9;
  const int vocab = 50257, ld = 50304;
  std::vector<int32_t> targets(rows);
  for (size_t r = 0; r < rows; ++r) targets[r] = int32_t((r * 7919) % vocab);
  Pair logits = random_pair(rows * ld, 26, 3.0f), losses = zeros(rows);
  both([&](Backend& be, auto buf) {
    be.softmax_cross_entropy(buf(logits), ld, targets.data(), rows, vocab, buf(losses), 0.0f);
  });
  expect_match(losses, kFp32, "cross-entropy losses (no gradient)");
  expect_match(logits, 0.0 + 1e-12, "logits untouched without a gradient");
  both([&](Backend& be, auto buf) {
    be.softmax_cross_entropy(buf(logits), ld, targets.data(), rows, vocab, buf(losses), 0.5f);
  });
  expect_match(losses, kFp32, "cross-entropy losses");
  expect_match(logits, kFp32, "cross-entropy gradient");
}

TEST_F(CudaVsCpu, LayoutAndRoutingOps) {
  const int dim = 40;
  const size_t n = 64, table_rows = 20;
  std::vector<int32_t> host_rows(n);
  for (size_t i = 0; i < n; ++i)
    host_rows[i] = int32_t((i * 3) % table_rows);  // repeats, as top-2 routing has
  IntPair rows = int_pair(host_rows);
  Pair src = random_pair(table_rows * dim, 27), scale = random_pair(n, 28),
       gathered = zeros(n * dim);
  Pair dst = random_pair(table_rows * dim, 29), dots = zeros(n), block = random_pair(30 * 64, 30);
  both([&](Backend& be, auto buf) {
    be.gather_rows(buf(src), on(be, rows), n, dim, buf(scale), buf(gathered));
    be.scatter_add_rows(buf(gathered), on(be, rows), n, dim, buf(scale), buf(dst));
    be.rowwise_dot(buf(gathered), buf(gathered), n, dim, buf(dots));
    be.copy_block(buf(src), dim, buf(block) + 5, 64, 10, 30, true);
  });
  expect_match(gathered, kFp32, "gather_rows");
  expect_match(dst, kFp32, "scatter_add_rows");
  expect_match(dots, kFp32, "rowwise_dot");
  expect_match(block, kFp32, "copy_block");
}

TEST_F(CudaVsCpu, CacheWritesArgmaxAndCachedAttention) {
  // Cache rows written out of order, then attention of 5 new queries per sequence at different
  // start positions, MHA-style (a kv head per query head) and MLA-style (one shared kv head
  // whose values are the tail of each key row).
  const int B = 3, T = 5, H = 4, d = 24, capacity = 2100;  // over two of the kernel's key tiles
  const std::vector<int32_t> host_start = {0, 1200, 2090};
  IntPair start = int_pair(host_start);
  std::vector<int32_t> host_rows;
  for (int b = 0; b < B; ++b)
    for (int t = T - 1; t >= 0; --t) host_rows.push_back(b * capacity + host_start[b] + t);
  IntPair rows = int_pair(host_rows);
  Pair cache = random_pair(size_t(B) * capacity * H * d, 33),
       fresh = random_pair(B * T * H * d, 34);
  Pair q = random_pair(B * T * H * d, 35), out = zeros(B * T * H * d),
       shared = zeros(B * T * H * 8);
  Pair logits = random_pair(B * T * 700, 36);
  IntPair best = int_pair(std::vector<int32_t>(B * T));
  both([&](Backend& be, auto buf) {
    be.scatter_rows(buf(fresh), on(be, rows), rows.cpu.size(), H * d, buf(cache));
    be.cached_attention(buf(q), buf(cache), buf(cache) + d, on(be, start),
                        {B, T, H, H, d, d, capacity, H * d, H * d}, 0.2f, buf(out));
    be.cached_attention(buf(q), buf(cache), buf(cache) + 16, on(be, start),
                        {B, T, H, 1, 24, 8, capacity, H * d, H * d}, 0.2f, buf(shared));
    be.argmax_rows(buf(logits), B * T, 700, on(be, best));
  });
  expect_match(cache, 0.0 + 1e-12, "scatter_rows");
  expect_match(out, kFp32, "cached attention, a kv head per query head");
  expect_match(shared, kFp32, "cached attention, one shared kv head");
  expect_same_ints(best, "argmax_rows");
}

TEST_F(CudaVsCpu, MoeRoutingAndRouterGradient) {
  const size_t n = 300;
  const int E = 8, K = 2;
  Pair logits = random_pair(n * E, 31, 2.0f), probs = zeros(n * E), gate = zeros(n * K),
       stats = zeros(2 * E), dgate = random_pair(n * K, 32), dlogits = zeros(n * E);
  IntPair slot_token = int_pair(std::vector<int32_t>(n * K)),
          token_slot = int_pair(std::vector<int32_t>(n * K)),
          offset = int_pair(std::vector<int32_t>(E + 1));
  both([&](Backend& be, auto buf) {
    be.moe_route(buf(logits), n, E, K, buf(probs), on(be, slot_token), buf(gate),
                 on(be, token_slot), on(be, offset), buf(stats));
    be.moe_router_backward(buf(dgate), buf(gate), on(be, token_slot), on(be, offset), buf(probs),
                           buf(stats), n, E, K, 0.3f, buf(dlogits));
  });
  expect_same_ints(offset, "expert offsets");
  expect_same_ints(slot_token, "slot tokens");
  expect_same_ints(token_slot, "token slots");
  expect_match(probs, kFp32, "router probabilities");
  expect_match(gate, kFp32, "gates");
  expect_match(stats, kFp32, "expert shares and mean probabilities");
  expect_match(dlogits, kFp32, "router gradient");
}

TEST_F(CudaVsCpu, OptimizerKernels) {
  const size_t n = 30011;
  Pair w = random_pair(n, 31), g = random_pair(n, 32, 0.1f), m = random_pair(n, 33, 0.01f),
       v = zeros(n);
  Pair buf_m = random_pair(n, 34), out = zeros(n);
  both([&](Backend& be, auto buf) {
    be.fill(buf(v), n, 1e-4f);
    be.adamw_step(buf(w), buf(g), buf(m), buf(v), n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.1f, 0.05f);
    be.momentum_step(buf(g), buf(buf_m), buf(out), n, 0.95f, true);
  });
  expect_match(w, kFp32, "adamw param");
  expect_match(m, kFp32, "adamw m");
  expect_match(v, kFp32, "adamw v");
  expect_match(out, kFp32, "nesterov momentum");
  const double cpu_rms = cpu_->adam_moments_update_rms(g.cpu.data(), m.cpu.data(), v.cpu.data(), n,
                                                       0.9f, 0.95f, 1e-8f, 0.19f, 0.1f);
  const double gpu_rms = gpu_->adam_moments_update_rms(g.gpu.data(), m.gpu.data(), v.gpu.data(), n,
                                                       0.9f, 0.95f, 1e-8f, 0.19f, 0.1f);
  EXPECT_NEAR(gpu_rms / cpu_rms, 1.0, 1e-5);
  Pair mat = random_pair(24 * 40, 35), polar = zeros(24 * 40);
  both([&](Backend& be, auto buf) { be.polar_factor_exact(buf(mat), 24, 40, buf(polar)); });
  expect_match(polar, kFp32, "polar_factor_exact");
}

// One forward/backward and one optimizer step of whole models (MHA dense, MLA + MoE) on both
// backends from the same weights and tokens.
TEST_F(CudaVsCpu, WholeTrainingStepMatchesTheCpu) {
  for (const std::string preset : {"micro", "micro-moe-mla", "micro-bf16"})
    for (const std::string opt : {"adamw", "muon"}) {
      const bool bf16 = preset == "micro-bf16";
      ModelConfig m = find_preset(bf16 ? "micro" : preset)->model;
      if (bf16) m.precision = Precision::kBf16;
      OptimizerConfig o;
      o.name = *parse_name<OptimizerKind>(opt);
      Gpt cm(m, *cpu_), gm(m, *gpu_);
      cm.init_weights(3);
      gm.init_weights(3);
      Optimizer co(o, cm.params(), cm.weights(), cm.grads(), *cpu_);
      Optimizer go(o, gm.params(), gm.weights(), gm.grads(), *gpu_);
      expect_same_forward_backward(cm, gm, *gpu_, 4, preset);
      const size_t n = cm.num_params();
      co.step(1e-3f);
      go.step(1e-3f);
      std::vector<float> cw(cm.weights(), cm.weights() + n), gw(n);
      gpu_->download(gw.data(), gm.weights(), n);
      // An update is a few percent of the weights; a wrong one would be off by O(1) of that.
      EXPECT_LT(relative_error(gw, cw), 1e-2) << preset << " " << opt << " weights after one step";
    }
}

// Generation on the GPU computes what the GPU's training forward computes (prefill in one pass,
// then decode steps), and a batch of prompts what each prompt computes alone, for MHA and MoE-MLA.
//
// Tolerance, like for like: both paths run their linear layers as bf16 GEMMs, but the training
// forward's attention is bf16 GEMMs too while generation's cached attention is fp32. So the two
// may differ by up to what bf16 GEMMs change in this model's loss, which is measured here on the
// same weights as the GPU's training forward against the CPU's (fp32 throughout): the check
// allows four times that gap (and at least 1e-4 relative). A cache mistake (a wrong position, a
// missing mask, a stale row) moves the loss by far more than bf16 rounding does, and the gap
// itself must stay under 2% or the comparison would prove nothing.
TEST_F(CudaVsCpu, GenerationOnTheGpuMatchesItsTrainingForward) {
  for (const std::string preset : {"micro", "micro-moe-mla"}) {
    ModelConfig m = find_preset(preset)->model;
    // Large weights spread the logits far apart, so that bf16 GEMMs picked by batch size cannot
    // turn a greedy choice between near-equal logits.
    m.init_std = 0.5;
    Gpt model(m, *gpu_), reference(m, *cpu_);
    model.init_weights(4);
    reference.init_weights(4);
    const auto [in, tg] = token_batch(m, 1);
    const double training = model.forward_loss(in.data(), tg.data(), 1);
    const double fp32 = reference.forward_loss(in.data(), tg.data(), 1);
    const double bf16_gap = std::abs(training / fp32 - 1.0);
    ASSERT_LT(bf16_gap, 2e-2) << preset << ": the GPU's training forward against the CPU's";
    const double tolerance = std::max(4 * bf16_gap, 1e-4);
    Generator generator(model, *gpu_);
    for (int chunk : {m.seq_len, 1})
      EXPECT_NEAR(generator.sequence_loss(in, tg, chunk) / training, 1.0, tolerance)
          << preset << ", " << chunk << " tokens per pass; bf16 gap " << bf16_gap;
    const std::vector<std::vector<int32_t>> prompts = {{5, 17, 3}, {1, 2, 3, 4, 5, 6, 7}, {42}};
    GenerationStats stats;
    const auto together = generator.generate_batch(prompts, 8, &stats);
    EXPECT_GT(stats.tokens_per_second, 0.0);
    for (size_t i = 0; i < prompts.size(); ++i)
      EXPECT_EQ(together[i], Generator(model, *gpu_).generate(prompts[i], 8))
          << preset << ", prompt " << i;
  }
}

TEST(CudaBackend, OutOfMemoryIsAClearErrorAndTheBackendStaysUsable) {
  REQUIRE_GPU();
  auto gpu = make_backend("cuda", 0, 0);
  {
    // The backend's own scratch (sum_squares' partials) is allocated at first use and counts in
    // bytes_in_use: take the baseline after it exists.
    Tensor warm(*gpu, 16);
    gpu->fill(warm.data(), 16, 1.0f);
    gpu->sum_squares(warm.data(), 16);
  }
  const size_t baseline = gpu->bytes_in_use();
  try {
    Tensor huge(*gpu, size_t(1) << 42);  // 16 TiB
    FAIL() << "a 16 TiB allocation succeeded";
  } catch (const cuda::OutOfMemory& e) {
    EXPECT_NE(std::string(e.what()).find("CUDA out of memory on device 0"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("MiB free of"), std::string::npos) << e.what();
  }
  Tensor small(*gpu, 1024);
  gpu->fill(small.data(), 1024, 2.0f);
  EXPECT_DOUBLE_EQ(gpu->sum_squares(small.data(), 1024), 4096.0);
  EXPECT_EQ(gpu->bytes_in_use(), baseline + 1024 * sizeof(float))
      << "the failed allocation holds nothing";
}

TEST(CudaBackend, TrainerRunsAndLearnsOnTheGpu) {
  REQUIRE_GPU();
  const std::string dir = test_configs::temp_dir("gpu_train");
  TrainConfig c = test_configs::micro(dir);
  c.backend = "cuda";
  c.training.max_steps = 60;
  const RunSummary s = Trainer(c, nullptr).run();
  EXPECT_EQ(s.outcome, RunOutcome::kSucceeded) << s.message;
  EXPECT_LT(s.final_val_loss, 3.3);
  EXPECT_GT(s.peak_memory_bytes, s.num_params * 4 * 3);
}

TEST(Nccl, TwoGpusTrainLikeOne) {
  REQUIRE_GPU();
  if (list_cuda_devices().size() < 2)
    GTEST_SKIP() << "needs 2 GPUs, " << list_cuda_devices().size() << " visible";
  const std::string dir = test_configs::temp_dir("gpu_dp");
  TrainConfig one = test_configs::micro(dir);
  one.backend = "cuda";
  one.training.max_steps = 10;
  TrainConfig two = one;
  two.training.data_parallel = 2;
  const RunSummary a = Trainer(one, nullptr).run(), b = Trainer(two, nullptr).run();
  ASSERT_EQ(b.outcome, RunOutcome::kSucceeded) << b.message;
  EXPECT_NEAR(a.final_val_loss, b.final_val_loss, 2e-2);  // bf16 GEMMs on different batch splits
}

}  // namespace
