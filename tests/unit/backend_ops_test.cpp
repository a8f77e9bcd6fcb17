// Every CPU backend operation against finite differences (tolerances in gradient_check.h).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numeric>

#include "gradient_check.h"
#include "trainer_core/backend/bf16.h"
#include "trainer_core/backend/cpu/cpu_backend.h"
#include "trainer_core/backend/cuda/device_query.h"

using namespace trainer_core;
using namespace test_util;

namespace {

class BackendOps : public ::testing::Test {
 protected:
  std::unique_ptr<Backend> b = make_cpu_backend(2);
};

TEST_F(BackendOps, RmsNormGradients) {
  const int rows = 3, dim = 8;
  auto x = random_vector(rows * dim, 1), gain = random_vector(dim, 2),
       r = random_vector(rows * dim, 3);
  std::vector<float> out(rows * dim), rstd(rows);
  auto loss = [&] {
    b->rmsnorm_forward(x.data(), gain.data(), rows, dim, 1e-5f, out.data(), rstd.data());
    return dot(out, r);
  };
  loss();
  std::vector<float> dx(rows * dim, 0.0f), dgain(dim, 0.0f);
  b->rmsnorm_backward(r.data(), x.data(), gain.data(), rstd.data(), rows, dim, dx.data(),
                      dgain.data());
  EXPECT_LT(relative_error(dx, numeric_gradient(x, loss)), kRelTol);
  EXPECT_LT(relative_error(dgain, numeric_gradient(gain, loss)), kRelTol);
}

TEST_F(BackendOps, LayerNormGradients) {
  const int rows = 3, dim = 8;
  auto x = random_vector(rows * dim, 4), gain = random_vector(dim, 5), bias = random_vector(dim, 6);
  auto r = random_vector(rows * dim, 7);
  std::vector<float> out(rows * dim), mean(rows), rstd(rows);
  auto loss = [&] {
    b->layernorm_forward(x.data(), gain.data(), bias.data(), rows, dim, 1e-5f, out.data(),
                         mean.data(), rstd.data());
    return dot(out, r);
  };
  loss();
  std::vector<float> dx(rows * dim, 0.0f), dgain(dim, 0.0f), dbias(dim, 0.0f);
  b->layernorm_backward(r.data(), x.data(), gain.data(), mean.data(), rstd.data(), rows, dim,
                        dx.data(), dgain.data(), dbias.data());
  EXPECT_LT(relative_error(dx, numeric_gradient(x, loss)), kRelTol);
  EXPECT_LT(relative_error(dgain, numeric_gradient(gain, loss)), kRelTol);
  EXPECT_LT(relative_error(dbias, numeric_gradient(bias, loss)), kRelTol);
}

TEST_F(BackendOps, RopeIsARotationAndItsInverseIsTheBackward) {
  const AttentionShape sh{2, 5, 2, 4};
  const int half = sh.head_dim / 2;
  std::vector<float> cos_t(sh.seq * half), sin_t(sh.seq * half);
  for (int t = 0; t < sh.seq; ++t)
    for (int i = 0; i < half; ++i) {
      cos_t[t * half + i] = std::cos(0.3f * t * (i + 1));
      sin_t[t * half + i] = std::sin(0.3f * t * (i + 1));
    }
  const size_t n = size_t(sh.batch) * sh.seq * sh.row_stride();
  auto x = random_vector(n, 8), r = random_vector(n, 9);
  auto rotated = x;
  b->rope(rotated.data(), sh, sh.head_dim, cos_t.data(), sin_t.data(), false);
  // Norm preserved per pair, position 0 untouched, inverse restores the input.
  EXPECT_NEAR(dot(rotated, rotated), dot(x, x), 1e-3);
  for (int i = 0; i < sh.row_stride(); ++i) EXPECT_FLOAT_EQ(rotated[i], x[i]);
  auto back = rotated;
  b->rope(back.data(), sh, sh.head_dim, cos_t.data(), sin_t.data(), true);
  for (size_t i = 0; i < n; ++i) EXPECT_NEAR(back[i], x[i], 1e-5);
  // Gradient: the backward of a rotation is the inverse rotation of dout.
  auto loss = [&] {
    auto y = x;
    b->rope(y.data(), sh, sh.head_dim, cos_t.data(), sin_t.data(), false);
    return dot(y, r);
  };
  auto dx = r;
  b->rope(dx.data(), sh, sh.head_dim, cos_t.data(), sin_t.data(), true);
  EXPECT_LT(relative_error(dx, numeric_gradient(x, loss)), kRelTol);
}

TEST_F(BackendOps, CausalAttentionGradientsAndMask) {
  const AttentionShape sh{2, 6, 2, 4};
  const size_t n = size_t(sh.batch) * sh.seq * sh.row_stride();
  auto q = random_vector(n, 10), k = random_vector(n, 11), v = random_vector(n, 12),
       r = random_vector(n, 13);
  std::vector<float> lse(size_t(sh.batch) * sh.heads * sh.seq), out(n);
  auto loss = [&] {
    b->attention_forward(q.data(), k.data(), v.data(), sh, lse.data(), out.data());
    return dot(out, r);
  };
  loss();
  // The first query sees only the first key: its output is v at position 0, and its
  // log-sum-exp is its one scaled score.
  for (int d = 0; d < sh.head_dim; ++d) EXPECT_NEAR(out[d], v[d], 1e-5);
  double score = 0;
  for (int d = 0; d < sh.head_dim; ++d) score += double(q[d]) * k[d];
  EXPECT_NEAR(lse[0], score / std::sqrt(double(sh.head_dim)), 1e-5);
  std::vector<float> dq(n), dk(n), dv(n);
  b->attention_backward(r.data(), q.data(), k.data(), v.data(), out.data(), lse.data(), sh,
                        dq.data(), dk.data(), dv.data());
  EXPECT_LT(relative_error(dq, numeric_gradient(q, loss)), kRelTol);
  EXPECT_LT(relative_error(dk, numeric_gradient(k, loss)), kRelTol);
  EXPECT_LT(relative_error(dv, numeric_gradient(v, loss)), kRelTol);
}

// The attention that materializes every probability (what the backend did before its flash-style
// contract), in double precision: the tiled version must compute the same function at lengths
// that span several blocks and end mid-block.
struct MaterializedAttention {
  std::vector<double> out, lse, dq, dk, dv;
  MaterializedAttention(const AttentionShape& sh, const std::vector<float>& q,
                        const std::vector<float>& k, const std::vector<float>& v,
                        const std::vector<float>& dout) {
    const int T = sh.seq, hd = sh.head_dim, ld = sh.row_stride();
    const size_t n = q.size();
    out.assign(n, 0), dq.assign(n, 0), dk.assign(n, 0), dv.assign(n, 0);
    lse.assign(size_t(sh.batch) * sh.heads * T, 0);
    const double scale = 1.0 / std::sqrt(double(hd));
    for (int b = 0; b < sh.batch; ++b)
      for (int h = 0; h < sh.heads; ++h) {
        auto at = [&](int t, int d) {
          return size_t(b) * T * ld + size_t(t) * ld + size_t(h) * hd + d;
        };
        std::vector<double> P(size_t(T) * T, 0.0);
        for (int i = 0; i < T; ++i) {
          double mx = -1e300;
          for (int j = 0; j <= i; ++j) {
            double s = 0;
            for (int d = 0; d < hd; ++d) s += double(q[at(i, d)]) * k[at(j, d)];
            P[size_t(i) * T + j] = s * scale;
            mx = std::max(mx, s * scale);
          }
          double sum = 0;
          for (int j = 0; j <= i; ++j) sum += std::exp(P[size_t(i) * T + j] - mx);
          lse[(size_t(b) * sh.heads + h) * T + i] = mx + std::log(sum);
          for (int j = 0; j <= i; ++j)
            P[size_t(i) * T + j] = std::exp(P[size_t(i) * T + j] - mx) / sum;
          for (int j = 0; j <= i; ++j)
            for (int d = 0; d < hd; ++d) out[at(i, d)] += P[size_t(i) * T + j] * v[at(j, d)];
        }
        for (int i = 0; i < T; ++i) {
          std::vector<double> dp(size_t(i) + 1);
          double rowsum = 0;
          for (int j = 0; j <= i; ++j) {
            for (int d = 0; d < hd; ++d) dp[size_t(j)] += double(dout[at(i, d)]) * v[at(j, d)];
            rowsum += P[size_t(i) * T + j] * dp[size_t(j)];
          }
          for (int j = 0; j <= i; ++j) {
            const double p = P[size_t(i) * T + j], ds = p * (dp[size_t(j)] - rowsum) * scale;
            for (int d = 0; d < hd; ++d) {
              dv[at(j, d)] += p * dout[at(i, d)];
              dq[at(i, d)] += ds * k[at(j, d)];
              dk[at(j, d)] += ds * q[at(i, d)];
            }
          }
        }
      }
  }
};

TEST_F(BackendOps, TiledAttentionMatchesTheMaterializedOneAcrossBlocks) {
  for (const AttentionShape sh :
       {AttentionShape{2, 150, 3, 16}, AttentionShape{1, 64, 2, 8}, AttentionShape{1, 1, 1, 4}}) {
    const size_t n = size_t(sh.batch) * sh.seq * sh.row_stride();
    const auto q = random_vector(n, 40), k = random_vector(n, 41), v = random_vector(n, 42),
               dout = random_vector(n, 43);
    std::vector<float> out(n, NAN), lse(size_t(sh.batch) * sh.heads * sh.seq, NAN), dq(n, NAN),
        dk(n, NAN), dv(n, NAN);  // poisoned: every element must be written
    b->attention_forward(q.data(), k.data(), v.data(), sh, lse.data(), out.data());
    b->attention_backward(dout.data(), q.data(), k.data(), v.data(), out.data(), lse.data(), sh,
                          dq.data(), dk.data(), dv.data());
    const MaterializedAttention ref(sh, q, k, v, dout);
    auto rel = [](const std::vector<float>& got, const std::vector<double>& want) {
      double diff = 0, norm = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        diff += std::pow(double(got[i]) - want[i], 2);  // NaN makes it fail
        norm += want[i] * want[i];
      }
      return std::sqrt(diff / std::max(norm, 1e-30));
    };
    const std::string at = "seq " + std::to_string(sh.seq);
    EXPECT_LT(rel(out, ref.out), 1e-5) << at;
    EXPECT_LT(rel(lse, ref.lse), 1e-5) << at;
    EXPECT_LT(rel(dq, ref.dq), 1e-4) << at;
    EXPECT_LT(rel(dk, ref.dk), 1e-4) << at;
    EXPECT_LT(rel(dv, ref.dv), 1e-4) << at;
  }
}

TEST_F(BackendOps, GeluValuesAndGradient) {
  auto x = random_vector(40, 14, 2.0), r = random_vector(40, 15);
  std::vector<float> out(40);
  auto loss = [&] {
    b->gelu_forward(x.data(), x.size(), out.data());
    return dot(out, r);
  };
  loss();
  for (size_t i = 0; i < x.size(); ++i) {
    const double u = x[i];
    const double ref = 0.5 * u * (1 + std::tanh(std::sqrt(2 / M_PI) * (u + 0.044715 * u * u * u)));
    EXPECT_NEAR(out[i], ref, 1e-5);
  }
  std::vector<float> dx(40);
  b->gelu_backward(r.data(), x.data(), x.size(), dx.data());
  EXPECT_LT(relative_error(dx, numeric_gradient(x, loss)), kRelTol);
}

// The activations' exp (backend/cpu/fast_math.h) over its whole range, through the vectorized
// loops (lengths past a vector, with a tail): values where x·log2(e) is at or near a rounding
// boundary, past the clamps, and a NaN, which must come out NaN.
TEST_F(BackendOps, ActivationsHoldTheirAccuracyAcrossTheRangeAndKeepANaN) {
  std::vector<float> x;
  for (int i = -4000; i <= 4000; ++i) x.push_back(float(i) * 0.01f);  // -40..40
  for (int k = -60; k <= 60; ++k)  // where 2·u·0.7978.. crosses half-integers of log2 e steps
    for (float d : {-1e-4f, 0.0f, 1e-4f}) x.push_back((float(k) + 0.5f) * 0.6931472f / 2 + d);
  x.push_back(500.0f);
  x.push_back(-500.0f);
  x.push_back(std::nanf(""));
  std::vector<float> out(x.size()), up(x.size(), 1.0f);
  b->gelu_forward(x.data(), x.size(), out.data());
  for (size_t i = 0; i + 1 < x.size(); ++i) {
    const double u = x[i];
    const double ref = 0.5 * u * (1 + std::tanh(std::sqrt(2 / M_PI) * (u + 0.044715 * u * u * u)));
    EXPECT_NEAR(out[i], ref, 2e-6 * std::max(1.0, std::fabs(ref))) << "gelu(" << u << ")";
  }
  EXPECT_TRUE(std::isnan(out.back()));
  b->swiglu_forward(x.data(), up.data(), x.size(), out.data());
  for (size_t i = 0; i + 1 < x.size(); ++i) {
    const double g = x[i], ref = g / (1 + std::exp(-g));
    EXPECT_NEAR(out[i], ref, 2e-6 * std::max(1.0, std::fabs(ref))) << "silu(" << g << ")";
  }
  EXPECT_TRUE(std::isnan(out.back()));
}

TEST_F(BackendOps, SwigluGradients) {
  auto gate = random_vector(30, 16, 2.0), up = random_vector(30, 17), r = random_vector(30, 18);
  std::vector<float> out(30);
  auto loss = [&] {
    b->swiglu_forward(gate.data(), up.data(), 30, out.data());
    return dot(out, r);
  };
  loss();
  for (size_t i = 0; i < 30; ++i)
    EXPECT_NEAR(out[i], gate[i] / (1 + std::exp(-double(gate[i]))) * up[i], 1e-5);
  std::vector<float> dgate(30), dup(30);
  b->swiglu_backward(r.data(), gate.data(), up.data(), 30, dgate.data(), dup.data());
  EXPECT_LT(relative_error(dgate, numeric_gradient(gate, loss)), kRelTol);
  EXPECT_LT(relative_error(dup, numeric_gradient(up, loss)), kRelTol);
}

TEST_F(BackendOps, SoftmaxCrossEntropyLossAndGradient) {
  const int rows = 4, vocab = 11;
  auto logits = random_vector(rows * vocab, 19, 3.0);
  const std::vector<int32_t> targets = {0, 5, 10, 3};
  std::vector<float> losses(rows);
  auto loss = [&] {
    auto tmp = logits;
    b->softmax_cross_entropy(tmp.data(), vocab, targets.data(), rows, vocab, losses.data(), 0.0f);
    double s = 0;
    for (float l : losses) s += l;
    return s;
  };
  loss();
  for (int r = 0; r < rows; ++r) {  // against a direct log-sum-exp in double
    double sum = 0;
    for (int j = 0; j < vocab; ++j) sum += std::exp(double(logits[r * vocab + j]));
    EXPECT_NEAR(losses[r], std::log(sum) - logits[r * vocab + targets[r]], 1e-5);
  }
  auto grad = logits;
  b->softmax_cross_entropy(grad.data(), vocab, targets.data(), rows, vocab, losses.data(), 1.0f);
  EXPECT_LT(relative_error(grad, numeric_gradient(logits, loss)), kRelTol);

  // Rows 16 floats apart (aligned, as the model lays out its logits): the same losses and
  // gradient, and the padding columns untouched.
  const int ld = 16;
  std::vector<float> padded(size_t(rows) * ld, 7.0f);
  for (int r = 0; r < rows; ++r)
    std::copy(logits.begin() + r * vocab, logits.begin() + (r + 1) * vocab,
              padded.begin() + r * ld);
  std::vector<float> padded_losses(rows);
  b->softmax_cross_entropy(padded.data(), ld, targets.data(), rows, vocab, padded_losses.data(),
                           1.0f);
  loss();  // losses of the unperturbed logits again (the numeric gradient left others)
  EXPECT_EQ(padded_losses, losses);
  for (int r = 0; r < rows; ++r)
    for (int j = 0; j < ld; ++j)
      EXPECT_EQ(padded[size_t(r) * ld + j], j < vocab ? grad[size_t(r) * vocab + j] : 7.0f);
}

TEST_F(BackendOps, EmbeddingGatherAndScatterAdd) {
  const int dim = 3;
  auto table = random_vector(5 * dim, 20);
  const std::vector<int32_t> tokens = {4, 1, 4};
  std::vector<float> out(tokens.size() * dim);
  b->embedding_forward(tokens.data(), tokens.size(), table.data(), dim, out.data());
  for (int d = 0; d < dim; ++d) EXPECT_EQ(out[d], table[4 * dim + d]);
  std::vector<float> dtable(5 * dim, 0.0f), dout(tokens.size() * dim, 1.0f);
  b->embedding_backward(tokens.data(), tokens.size(), dout.data(), dim, dtable.data());
  EXPECT_EQ(dtable[4 * dim], 2.0f);  // token 4 appears twice: gradients add
  EXPECT_EQ(dtable[1 * dim], 1.0f);
  EXPECT_EQ(dtable[0], 0.0f);
}

TEST_F(BackendOps, BlocksGathersAndScatters) {
  const std::vector<float> src = {1, 2, 3, 4, 5, 6};  // 3 rows x 2
  std::vector<float> dst(3 * 4, 0.0f);
  b->copy_block(src.data(), 2, dst.data() + 1, 4, 3, 2, false);  // into columns 1..2 of a 3x4
  EXPECT_EQ(dst, (std::vector<float>{0, 1, 2, 0, 0, 3, 4, 0, 0, 5, 6, 0}));
  b->copy_block(src.data(), 2, dst.data() + 1, 4, 3, 2, true);
  EXPECT_EQ(dst[1], 2.0f);
  const std::vector<int32_t> rows = {2, 0, 2};
  const std::vector<float> scale = {1.0f, 10.0f, -1.0f};
  std::vector<float> g(3 * 2);
  b->gather_rows(src.data(), rows.data(), 3, 2, scale.data(), g.data());
  EXPECT_EQ(g, (std::vector<float>{5, 6, 10, 20, -5, -6}));
  std::vector<float> acc(3 * 2, 0.0f);
  b->scatter_add_rows(src.data(), rows.data(), 3, 2, nullptr, acc.data());
  EXPECT_EQ(acc, (std::vector<float>{3, 4, 0, 0, 1 + 5, 2 + 6}));  // row 2 receives two rows
  std::vector<float> dots(3);
  b->rowwise_dot(src.data(), g.data(), 3, 2, dots.data());
  EXPECT_EQ(dots, (std::vector<float>{1 * 5 + 2 * 6, 3 * 10 + 4 * 20, 5 * -5 + 6 * -6}));
}

// C = alpha op(A) op(B) + beta C by its definition, with padded leading dimensions; one row
// (m = 1) takes the matrix-vector path.
TEST_F(BackendOps, GemmIsItsDefinitionInEveryTransposeAndForOneRow) {
  const int n = 5, k = 7, pad = 3;
  for (int m : {1, 4})
    for (Transpose ta : {Transpose::kNo, Transpose::kYes})
      for (Transpose tb : {Transpose::kNo, Transpose::kYes}) {
        const bool at = ta == Transpose::kYes, bt = tb == Transpose::kYes;
        const int lda = (at ? m : k) + pad, ldb = (bt ? k : n) + pad, ldc = n + pad;
        const auto a = random_vector(size_t(at ? k : m) * lda, 91);
        const auto bm = random_vector(size_t(bt ? n : k) * ldb, 92);
        auto c = random_vector(size_t(m) * ldc, 93);
        std::vector<double> want(c.begin(), c.end());
        for (int i = 0; i < m; ++i)
          for (int j = 0; j < n; ++j) {
            double sum = 0;
            for (int p = 0; p < k; ++p)
              sum += double(at ? a[size_t(p) * lda + i] : a[size_t(i) * lda + p]) *
                     (bt ? bm[size_t(j) * ldb + p] : bm[size_t(p) * ldb + j]);
            want[size_t(i) * ldc + j] = 0.5 * sum + 0.25 * c[size_t(i) * ldc + j];
          }
        b->gemm(ta, tb, m, n, k, 0.5f, a.data(), lda, bm.data(), ldb, 0.25f, c.data(), ldc);
        EXPECT_LT(relative_error(c, want), 1e-6) << "m " << m << " ta " << at << " tb " << bt;
      }
}

// Round to nearest, ties to even, at the bf16 grid: 1 + 2^-8 lies halfway between 1 and
// 1 + 2^-7 and goes to the even 1; 1 + 3·2^-8 halfway between 1 + 2^-7 and 1 + 2^-6 goes up.
// The largest float overflows to infinity; the subnormal 1e-40 = 71362·2^-149 keeps the 7 bits
// above 2^16·2^-149 and becomes 2^-133.
TEST_F(BackendOps, Bf16RoundsToNearestEvenAndKeepsNansAndInfinities) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> x = {1.0f,
                                1.0f + 0x1p-8f,
                                1.0f + 3 * 0x1p-8f,
                                1.0f + 0x1p-8f + 0x1p-20f,
                                -2.5f,
                                0x1.fffffep127f,
                                inf,
                                -inf,
                                std::nanf(""),
                                1e-40f};
  const std::vector<float> want = {
      1.0f, 1.0f, 1.0f + 0x1p-6f, 1.0f + 0x1p-7f, -2.5f, inf /*over*/, inf, -inf, NAN, 0x1p-133f};
  std::vector<Bf16> got(x.size());
  b->to_bf16(x.data(), x.size(), got.data());
  for (size_t i = 0; i < x.size(); ++i) {
    const float w = widen(got[i]);
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(w)) << i;
    } else {
      EXPECT_EQ(w, want[i]) << "input " << i;
    }
  }
}

// gemm_bf16 is gemm of the bf16-rounded operands, in every transpose and for one row.
TEST_F(BackendOps, Bf16GemmIsTheFp32GemmOfTheRoundedOperands) {
  const int n = 6, k = 9;
  for (int m : {1, 5})
    for (Transpose ta : {Transpose::kNo, Transpose::kYes})
      for (Transpose tb : {Transpose::kNo, Transpose::kYes}) {
        const bool at = ta == Transpose::kYes, bt = tb == Transpose::kYes;
        const int lda = at ? m : k, ldb = bt ? k : n;
        const auto a = random_vector(size_t(m) * k, 94), bm = random_vector(size_t(k) * n, 95);
        std::vector<Bf16> a16(a.size()), b16(bm.size());
        b->to_bf16(a.data(), a.size(), a16.data());
        b->to_bf16(bm.data(), bm.size(), b16.data());
        std::vector<float> aw(a.size()), bw(bm.size());
        for (size_t i = 0; i < a.size(); ++i) aw[i] = widen(a16[i]);
        for (size_t i = 0; i < bm.size(); ++i) bw[i] = widen(b16[i]);
        std::vector<float> want(size_t(m) * n, 1.0f), got = want, unrounded = want;
        b->gemm(ta, tb, m, n, k, 1.0f, aw.data(), lda, bw.data(), ldb, 0.5f, want.data(), n);
        b->gemm_bf16(ta, tb, m, n, k, 1.0f, a16.data(), lda, b16.data(), ldb, 0.5f, got.data(), n);
        b->gemm(ta, tb, m, n, k, 1.0f, a.data(), lda, bm.data(), ldb, 0.5f, unrounded.data(), n);
        EXPECT_EQ(got, want) << "m " << m << " ta " << at << " tb " << bt;
        EXPECT_NE(got, unrounded) << "the operands were rounded";
      }
}

// Per-head products in one call: batch i reads a + i·stride_a etc., here interleaved heads of
// one row-major matrix as MLA lays them out (head i's columns start i·k floats further on).
TEST_F(BackendOps, StridedBatchedGemmMultipliesEachHeadsBlock) {
  const int heads = 3, m = 4, k = 5, n = 6;
  const auto a = random_vector(size_t(m) * heads * k, 96);  // (m, heads·k)
  const auto w = random_vector(size_t(heads) * k * n, 97);  // heads blocks of (k, n)
  std::vector<float> c(size_t(m) * heads * n, 0.0f);        // (m, heads·n)
  b->gemm_strided_batched(Transpose::kNo, Transpose::kNo, m, n, k, 1.0f, a.data(), heads * k, k,
                          w.data(), n, (long long)k * n, 0.0f, c.data(), heads * n, n, heads);
  std::vector<double> want(c.size());
  for (int h = 0; h < heads; ++h)
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) {
        double sum = 0;
        for (int p = 0; p < k; ++p)
          sum += double(a[size_t(i) * heads * k + h * k + p]) * w[size_t(h) * k * n + p * n + j];
        want[size_t(i) * heads * n + h * n + j] = sum;
      }
  EXPECT_LT(relative_error(c, want), 1e-6);
}

TEST_F(BackendOps, ScatterRowsOverwritesAndArgmaxTakesTheFirstOfEqualMaxima) {
  const std::vector<float> src = {1, 2, 3, 4};  // 2 rows x 2
  std::vector<float> dst(4 * 2, 9.0f);
  const std::vector<int32_t> rows = {3, 1};
  b->scatter_rows(src.data(), rows.data(), 2, 2, dst.data());
  EXPECT_EQ(dst, (std::vector<float>{9, 9, 3, 4, 9, 9, 1, 2}));
  const std::vector<float> x = {0, 5, 5, -1, /**/ -3, -2, -7, -2, /**/ 1, 0, 0, 8};
  std::vector<int32_t> best(3, -1);
  b->argmax_rows(x.data(), 3, 4, best.data());
  EXPECT_EQ(best, (std::vector<int32_t>{1, 1, 3}));
}

// Attention against a cache is the training attention when the cache holds the same keys and
// values: all queries at once from position 0 (prefill), a later chunk of them (decode), and
// with one kv head shared by all query heads (MLA's latent cache). Cache rows beyond a query's
// position hold garbage, which must not be read.
TEST_F(BackendOps, CachedAttentionIsTheTrainingAttentionOverTheCache) {
  const int B = 2, S = 7, H = 3, d = 4, ld = H * d, capacity = 9;
  const auto q = random_vector(size_t(B) * S * ld, 81), k = random_vector(size_t(B) * S * ld, 82),
             v = random_vector(size_t(B) * S * ld, 83);
  std::vector<float> lse(size_t(B) * H * S), expected(size_t(B) * S * ld);
  b->attention_forward(q.data(), k.data(), v.data(), {B, S, H, d}, lse.data(), expected.data());
  std::vector<float> kc(size_t(B) * capacity * ld, 1e30f), vc = kc;
  for (int s = 0; s < B; ++s)
    for (int t = 0; t < S; ++t)
      for (int i = 0; i < ld; ++i) {
        kc[(size_t(s) * capacity + t) * ld + i] = k[(size_t(s) * S + t) * ld + i];
        vc[(size_t(s) * capacity + t) * ld + i] = v[(size_t(s) * S + t) * ld + i];
      }
  const float scale = 1.0f / std::sqrt(float(d));
  auto rel = [](const std::vector<float>& got, const std::vector<float>& want) {
    return relative_error(got, std::vector<double>(want.begin(), want.end()));
  };
  std::vector<float> out(expected.size());
  const std::vector<int32_t> from_zero = {0, 0};
  b->cached_attention(q.data(), kc.data(), vc.data(), from_zero.data(),
                      {B, S, H, H, d, d, capacity, ld, ld}, scale, out.data());
  EXPECT_LT(rel(out, expected), 1e-5);

  // The last 3 queries of each sequence, as a chunk starting at position 4.
  const int chunk = 3, first = S - chunk;
  std::vector<float> q_tail, expected_tail;
  for (int s = 0; s < B; ++s) {
    const size_t from = (size_t(s) * S + first) * ld, to = (size_t(s) * S + S) * ld;
    q_tail.insert(q_tail.end(), q.begin() + long(from), q.begin() + long(to));
    expected_tail.insert(expected_tail.end(), expected.begin() + long(from),
                         expected.begin() + long(to));
  }
  std::vector<float> tail(q_tail.size());
  const std::vector<int32_t> later = {first, first};
  b->cached_attention(q_tail.data(), kc.data(), vc.data(), later.data(),
                      {B, chunk, H, H, d, d, capacity, ld, ld}, scale, tail.data());
  EXPECT_LT(rel(tail, expected_tail), 1e-5);

  // One kv head (head 0's keys and values) read by every query head.
  std::vector<float> k0 = k, v0 = v;
  for (size_t row = 0; row < size_t(B) * S; ++row)
    for (int h = 1; h < H; ++h)
      for (int i = 0; i < d; ++i) {
        k0[row * ld + h * d + i] = k[row * ld + i];
        v0[row * ld + h * d + i] = v[row * ld + i];
      }
  b->attention_forward(q.data(), k0.data(), v0.data(), {B, S, H, d}, lse.data(), expected.data());
  b->cached_attention(q.data(), kc.data(), vc.data(), from_zero.data(),
                      {B, S, H, 1, d, d, capacity, ld, ld}, scale, out.data());
  EXPECT_LT(rel(out, expected), 1e-5);
}

// Routing on the backend against the routing the model did on the host before (every token's
// top-k by sorting, gates from the chosen logits, slots grouped by expert in token order), and
// the router's gradient against a numeric one: through the gates, and through the balance loss
// with the experts' shares held fixed (as the method defines its gradient).
TEST_F(BackendOps, MoeRoutingMatchesHostRoutingAndItsGradientIsTheNumericOne) {
  const size_t n = 37;
  const int E = 6, K = 2;
  auto logits = random_vector(n * E, 50, 2.0);
  logits[7 * E + 1] = logits[7 * E + 4];  // a tie: the lower index wins
  std::vector<float> probs(n * E), slot_gate(n * K), stats(2 * E);
  std::vector<int32_t> slot_token(n * K), token_slot(n * K), offset(E + 1);
  auto route = [&] {
    b->moe_route(logits.data(), n, E, K, probs.data(), slot_token.data(), slot_gate.data(),
                 token_slot.data(), offset.data(), stats.data());
  };
  route();
  std::vector<std::vector<std::pair<int32_t, float>>> by_expert(E);
  for (size_t t = 0; t < n; ++t) {
    std::vector<int> order(E);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int x, int y) { return logits[t * E + x] > logits[t * E + y]; });
    double sum = 0;
    for (int k = 0; k < K; ++k) sum += std::exp(double(logits[t * E + order[k]]));
    for (int k = 0; k < K; ++k)
      by_expert[order[k]].push_back(
          {int32_t(t), float(std::exp(double(logits[t * E + order[k]])) / sum)});
  }
  size_t s = 0;
  for (int e = 0; e < E; ++e) {
    EXPECT_EQ(offset[e], int32_t(s)) << "expert " << e;
    EXPECT_NEAR(stats[e], double(by_expert[e].size()) / double(n * K), 1e-7);
    for (auto [token, gate] : by_expert[e]) {
      EXPECT_EQ(slot_token[s], token) << "slot " << s;
      EXPECT_NEAR(slot_gate[s], gate, 1e-6) << "slot " << s;
      ++s;
    }
  }
  EXPECT_EQ(offset[E], int32_t(n * K));
  for (size_t i = 0; i < n * K; ++i) EXPECT_EQ(slot_token[token_slot[i]], int32_t(i / K)) << i;
  // The gradient.
  const float aux_scale = 0.3f;
  const auto r = random_vector(n * K, 51);
  const std::vector<float> shares(stats.begin(), stats.begin() + E);
  auto loss = [&] {
    route();
    double value = 0;
    for (size_t i = 0; i < n * K; ++i) value += double(r[i]) * slot_gate[i];
    for (size_t t = 0; t < n; ++t)
      for (int e = 0; e < E; ++e) value += aux_scale * double(shares[e]) * probs[t * E + e];
    return value;
  };
  std::vector<float> dlogits(n * E);
  logits[7 * E + 1] += 1e-3f;  // break the tie: a numeric step must not flip the choice
  route();
  b->moe_router_backward(r.data(), slot_gate.data(), token_slot.data(), offset.data(), probs.data(),
                         stats.data(), n, E, K, aux_scale, dlogits.data());
  EXPECT_LT(relative_error(dlogits, numeric_gradient(logits, loss)), kRelTol);
}

TEST_F(BackendOps, PeakMemoryTracksTheHighWaterMark) {
  const size_t before = b->bytes_in_use();
  {
    Tensor a(*b, 1000);
    Tensor c(*b, 500);
  }
  Tensor d(*b, 100);
  EXPECT_EQ(b->peak_bytes(), before + 1500 * sizeof(float));
  EXPECT_EQ(b->bytes_in_use(), before + 100 * sizeof(float));
}

}  // namespace

namespace {

// A GPU's logits chunk stays addressable with 32-bit offsets (cuBLAS, kernel indices): a
// sixteenth of memory on an 80 GB card, capped at 2^31 - 1 floats on an H200's 141 GB.
TEST(BackendMemory, TheDeviceLogitsBudgetNeverPassesThirtyOneBitOffsets) {
  EXPECT_EQ(Backend::device_logit_budget_floats(size_t(80) << 30), (size_t(80) << 30) / 64);
  const size_t h200 = size_t(143771) << 20;  // 140.4 GiB as cudaMemGetInfo reports it
  EXPECT_GT(h200 / 64, size_t(2147483647));
  EXPECT_EQ(Backend::device_logit_budget_floats(h200), size_t(2147483647));
}

TEST(BackendMemory, AFailedAllocationSaysHowMuchAndWhatTheRunHolds) {
  auto b = make_cpu_backend(1);
  Tensor held(*b, 1 << 20);  // 4 MiB
  try {
    Tensor huge(*b, size_t(1) << 60);
    FAIL() << "a 4 EiB allocation succeeded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("out of host memory"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("this run holds 4.0 MiB"), std::string::npos) << e.what();
  }
  EXPECT_EQ(b->bytes_in_use(), size_t(4) << 20) << "a failed allocation is not counted";
}

}  // namespace

// A GPU node with a driver older than the build's CUDA runtime must not read as "no GPU" (the
// GPU tests would turn into skips and --backend auto into a CPU worker without a word).
TEST(CudaAvailability, AnOldDriverIsNamedAndNoDriverIsNoGpu) {
  EXPECT_EQ(describe_cuda_failure(0, 13000, "CUDA driver version is insufficient"), "")
      << "no driver: a machine without GPUs, nothing to report";
  const std::string old =
      describe_cuda_failure(12020, 13000, "CUDA driver version is insufficient");
  EXPECT_NE(old.find("supports CUDA 12.2"), std::string::npos) << old;
  EXPECT_NE(old.find("runtime 13.0"), std::string::npos) << old;
  EXPECT_NE(old.find("update the driver"), std::string::npos) << old;
  const std::string other =
      describe_cuda_failure(13000, 13000, "all CUDA-capable devices are busy");
  EXPECT_NE(other.find("all CUDA-capable devices are busy"), std::string::npos) << other;
}

TEST(BackendNorm, ScaleToInverseNormPutsAMatrixOnTheSphereOfTheGivenRadius) {
  auto b = make_cpu_backend(1);
  std::vector<float> x = {3.0f, 4.0f, 0.0f, 12.0f};  // norm 13
  b->scale_to_inverse_norm(x.data(), x.size(), 1, 2.0, 1.0, 0.0);
  EXPECT_NEAR(std::sqrt(b->sum_squares(x.data(), x.size())), 2.0, 1e-6);
  EXPECT_FLOAT_EQ(x[0], 6.0f / 13.0f);
  b->scale_to_inverse_norm(x.data(), x.size(), 1, 1.0, 1.02, 1e-6);  // Polar Express: in the ball
  EXPECT_NEAR(std::sqrt(b->sum_squares(x.data(), x.size())), 1.0 / 1.02, 1e-6);
}

// A stack of blocks (Newton-Schulz's matrices) in one call: each block scaled by its own norm,
// bit for bit as alone, whatever the thread count. Blocks of different sizes of norm, so that
// one block's norm applied to another shows.
TEST(BackendNorm, ScaleToInverseNormOfAStackScalesEachBlockAsAlone) {
  const size_t n = 1000;
  const int count = 5;
  std::vector<float> stack = random_vector(n * count, 12);
  for (int b = 0; b < count; ++b)
    for (size_t i = 0; i < n; ++i) stack[b * n + i] *= float(b + 1);
  std::vector<float> alone = stack;
  auto one_thread = make_cpu_backend(1);
  for (int b = 0; b < count; ++b)
    one_thread->scale_to_inverse_norm(alone.data() + b * n, n, 1, 1.0, 1.02, 1e-6);
  for (int threads : {1, 2}) {
    auto be = make_cpu_backend(threads);
    std::vector<float> together = stack;
    be->scale_to_inverse_norm(together.data(), n, count, 1.0, 1.02, 1e-6);
    EXPECT_EQ(together, alone) << threads << " thread(s)";
    EXPECT_NEAR(std::sqrt(be->sum_squares(together.data() + 3 * n, n)), 1.0 / 1.02, 1e-6);
  }
}
