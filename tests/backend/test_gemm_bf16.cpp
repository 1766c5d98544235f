// bf16 mixed-precision GEMM: inputs rounded to bf16 (nearest even), f32 accumulation. Matrices of small integers
// are exact in bf16, so there it must equal the f32 GEMM bit for bit, for every transpose, stride, alpha and beta;
// on random inputs its error is that of bf16 rounding; a bf16 compute context routes cpu::gemm through it, and its
// mirror and reuse regions change no product.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/compute_context.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/gemm_bf16.h"
#include "core/rng.h"
#include "support/gradcheck.h"

namespace moelab::cpu {
namespace {

const ComputeContext kConvertAll;  // no mirror, no reuse: gemm_bf16 converts every operand

struct Case {
  Trans ta, tb;
  int64_t M, N, K, pad;  // pad: extra columns in every stored matrix (row stride = width + pad)
  float alpha, beta;
};

// Stored matrices for op(A) [M,K], op(B) [K,N] and C [M,N], filled by fill(i).
struct Operands {
  std::vector<float> a, b, c;  // stored row-major with their lda, ldb, ldc
  int64_t lda, ldb, ldc;
};

template <typename Fill>
Operands operands(const Case& k, Fill fill) {
  Operands o;
  const int64_t a_rows = k.ta == Trans::T ? k.K : k.M, a_cols = k.ta == Trans::T ? k.M : k.K;
  const int64_t b_rows = k.tb == Trans::T ? k.N : k.K, b_cols = k.tb == Trans::T ? k.K : k.N;
  o.lda = a_cols + k.pad, o.ldb = b_cols + k.pad, o.ldc = k.N + k.pad;
  o.a.resize(a_rows * o.lda), o.b.resize(b_rows * o.ldb), o.c.resize(k.M * o.ldc);
  int64_t i = 0;
  for (auto* v : {&o.a, &o.b, &o.c})
    for (float& x : *v) x = fill(i++);
  return o;
}

TEST(GemmBf16, IntegerMatricesEqualTheF32GemmExactly) {
  for (Trans ta : {Trans::N, Trans::T})
    for (Trans tb : {Trans::N, Trans::T})
      for (const auto& [alpha, beta] : {std::pair{1.0f, 0.0f}, std::pair{0.5f, 2.0f}, std::pair{1.0f, 1.0f}})
        // Rows below, at and past a multiple of the 64-row bucket (a whole bucket plus a remainder); depths that
        // are padded (45, 130) and one that is not (64).
        for (const auto& [M, K] : {std::pair<int64_t, int64_t>{37, 45}, {64, 64}, {150, 130}}) {
          const Case k{ta, tb, M, 29, K, 3, alpha, beta};
          SCOPED_TRACE(::testing::Message() << "ta " << (ta == Trans::T) << " tb " << (tb == Trans::T) << " alpha "
                                            << alpha << " beta " << beta << " M " << M << " K " << K);
          Operands x = operands(k, [](int64_t i) { return static_cast<float>((i * 7919) % 17 - 8); });
          Operands y = x;
          gemm_bf16(kConvertAll, ta, tb, k.M, k.N, k.K, alpha, x.a.data(), x.lda, x.b.data(), x.ldb, beta, x.c.data(),
                    x.ldc);
          gemm(ta, tb, k.M, k.N, k.K, alpha, y.a.data(), y.lda, y.b.data(), y.ldb, beta, y.c.data(), y.ldc);
          for (int64_t i = 0; i < k.M; ++i)
            for (int64_t j = 0; j < k.N; ++j) ASSERT_EQ(x.c[i * x.ldc + j], y.c[i * y.ldc + j]) << i << "," << j;
          for (int64_t i = 0; i < k.M; ++i)  // the padding of C is left alone
            for (int64_t j = k.N; j < x.ldc; ++j) ASSERT_EQ(x.c[i * x.ldc + j], y.c[i * y.ldc + j]);
        }
}

TEST(GemmBf16, RandomInputsHaveTheErrorOfBf16Rounding) {
  const Case k{Trans::N, Trans::T, 64, 48, 256, 0, 1.0f, 0.0f};
  Rng rng(7, 0);
  Operands x = operands(k, [&](int64_t) { return static_cast<float>(rng.normal()); });
  gemm_bf16(kConvertAll, k.ta, k.tb, k.M, k.N, k.K, 1.0f, x.a.data(), x.lda, x.b.data(), x.ldb, 0.0f, x.c.data(),
            x.ldc);
  double worst = 0, worst_rounded = 0;
  for (int64_t i = 0; i < k.M; ++i)
    for (int64_t j = 0; j < k.N; ++j) {
      double exact = 0, rounded = 0, scale = 0;  // in double: of the f32 inputs, and of their bf16 roundings
      for (int64_t p = 0; p < k.K; ++p) {
        const float a = x.a[i * x.lda + p], b = x.b[j * x.ldb + p];
        exact += static_cast<double>(a) * b;
        rounded += static_cast<double>(from_bf16(to_bf16(a))) * from_bf16(to_bf16(b));
        scale += std::abs(static_cast<double>(a) * b);
      }
      worst = testing::worse(worst, std::abs(x.c[i * x.ldc + j] - exact) / scale);
      worst_rounded = testing::worse(worst_rounded, std::abs(x.c[i * x.ldc + j] - rounded) / scale);
    }
  EXPECT_LT(worst, 2 * std::ldexp(1.0, -8));  // two inputs, each within half a bf16 ulp (2^-9 relative)
  EXPECT_GT(worst, 1e-5);                     // and it really is bf16, not f32
  EXPECT_LT(worst_rounded, 1e-6);             // f32 accumulation of the rounded inputs
}

// A B operand inside a context's mirror is read from its bf16 copy (not converted again): the product is the same,
// for both layouts of B, and without the mirror the f32 array is converted.
TEST(GemmBf16, AMirroredOperandGivesTheSameProduct) {
  for (Trans tb : {Trans::N, Trans::T})
    for (int64_t K : {int64_t{64}, int64_t{45}}) {
      SCOPED_TRACE(::testing::Message() << "tb " << (tb == Trans::T) << " K " << K);
      const Case k{Trans::N, tb, 100, 29, K, 3, 1.0f, 0.0f};
      Operands x = operands(k, [](int64_t i) { return static_cast<float>((i * 7919) % 17 - 8); });
      Operands mirrored = x;
      gemm_bf16(kConvertAll, k.ta, k.tb, k.M, k.N, k.K, 1.0f, x.a.data(), x.lda, x.b.data(), x.ldb, 0.0f, x.c.data(),
                x.ldc);
      std::vector<uint16_t> b_bf16(mirrored.b.size());
      to_bf16(mirrored.b.data(), static_cast<int64_t>(mirrored.b.size()), b_bf16.data());
      // The mirror's copy is what gemm_bf16 reads: poison the f32 array to prove it.
      std::vector<float> b_f32 = mirrored.b;
      std::fill(mirrored.b.begin(), mirrored.b.end(), 1e30f);
      ComputeContext ctx;
      ctx.mirror = {mirrored.b.data(), static_cast<int64_t>(mirrored.b.size()), b_bf16.data()};
      gemm_bf16(ctx, k.ta, k.tb, k.M, k.N, k.K, 1.0f, mirrored.a.data(), mirrored.lda, mirrored.b.data(), mirrored.ldb,
                0.0f, mirrored.c.data(), mirrored.ldc);
      EXPECT_EQ(mirrored.c, x.c);
      std::fill(mirrored.c.begin(), mirrored.c.end(), 0.0f);  // without the mirror the f32 array is converted
      gemm_bf16(kConvertAll, k.ta, k.tb, k.M, k.N, k.K, 1.0f, mirrored.a.data(), mirrored.lda, mirrored.b.data(),
                mirrored.ldb, 0.0f, mirrored.c.data(), mirrored.ldc);
      EXPECT_GT(std::abs(mirrored.c[0]), 1e20f);
      EXPECT_EQ(b_f32, x.b);
    }
}

// A SwiGLU backward's pattern of GEMMs: d_x [n,d] = d_g w, then d_w [h,d] += d_g^T x twice (a matrix read as A, then
// as transposed A, another read as B twice).
struct ReusePattern {
  int64_t n, d = 40, h = 128;
  std::vector<float> dg, x, w;  // d_g [n,h], x [n,d], w [h,d]
  explicit ReusePattern(int64_t rows) : n(rows), dg(n * h), x(n * d), w(h * d) {
    const auto value = [](int64_t i) { return static_cast<float>((i * 7919) % 23 - 11) / 8.0f; };
    for (size_t i = 0; i < dg.size(); ++i) dg[i] = value(i);
    for (size_t i = 0; i < x.size(); ++i) x[i] = value(i + 5);
    for (size_t i = 0; i < w.size(); ++i) w[i] = value(i + 9);
  }
  void run(const ComputeContext& ctx, std::vector<float>& dx, std::vector<float>& dw) const {
    gemm_bf16(ctx, Trans::N, Trans::N, n, d, h, 1.0f, dg.data(), h, w.data(), d, 0.0f, dx.data(), d);
    gemm_bf16(ctx, Trans::T, Trans::N, h, d, n, 1.0f, dg.data(), h, x.data(), d, 1.0f, dw.data(), d);
    gemm_bf16(ctx, Trans::T, Trans::N, h, d, n, 1.0f, dg.data(), h, x.data(), d, 1.0f, dw.data(), d);
  }
  // d_g w
  std::vector<float> input_grad(const ComputeContext& ctx) const {
    std::vector<float> dx(n * d, 0.0f);
    gemm_bf16(ctx, Trans::N, Trans::N, n, d, h, 1.0f, dg.data(), h, w.data(), d, 0.0f, dx.data(), d);
    return dx;
  }
  // d_g^T x
  std::vector<float> weight_grad(const ComputeContext& ctx) const {
    std::vector<float> dw(h * d, 0.0f);
    gemm_bf16(ctx, Trans::T, Trans::N, h, d, n, 1.0f, dg.data(), h, x.data(), d, 0.0f, dw.data(), d);
    return dw;
  }
};

// Inside a Bf16ReuseRegion the pattern's products are the very bits of the same GEMMs without one, on row counts
// with and without a partial 64-row block; and the reuse is real: a matrix changed after a GEMM of the region read
// it is not read again (which is why its owner must not change one), until the region closes.
TEST(GemmBf16, AReuseRegionGivesTheSameProductsAndReusesTheCopies) {
  for (int64_t n : {int64_t{64}, int64_t{100}}) {
    SCOPED_TRACE(::testing::Message() << "rows " << n);
    ReusePattern p(n);
    std::vector<float> dx_plain(n * p.d), dw_plain(p.h * p.d, 0.5f), dx_reused(n * p.d), dw_reused(p.h * p.d, 0.5f);
    p.run(kConvertAll, dx_plain, dw_plain);
    Bf16Copies store;
    ComputeContext outer;
    outer.copy_store = &store;
    {
      const Bf16ReuseRegion region(outer);
      p.run(region.context(), dx_reused, dw_reused);
      EXPECT_EQ(dx_reused, dx_plain);
      EXPECT_EQ(dw_reused, dw_plain);
      std::fill(p.x.begin(), p.x.end(), 1e30f);  // breaks the contract on purpose: the kept copy of x is read
      EXPECT_LT(std::abs(p.weight_grad(region.context())[0]), 1e20f);
    }
    EXPECT_GT(std::abs(p.weight_grad(outer)[0]), 1e20f) << "after the region, x is converted again";
    const Bf16ReuseRegion next(outer);
    EXPECT_GT(std::abs(p.weight_grad(next.context())[0]), 1e20f) << "a new region starts with no copies";
  }
}

// A region opened inside another (one expert's inside a loop over experts) cannot hand the outer one its copy of a
// matrix (the expert's scratch) that changed after the inner region closed: the outer region converts it again, and
// what it read itself still gives the same products.
TEST(GemmBf16, ANestedRegionLeavesNoCopyBehind) {
  ReusePattern p(64);
  const std::vector<float> dx = p.input_grad(kConvertAll), dw = p.weight_grad(kConvertAll);
  Bf16Copies store;
  ComputeContext outer_ctx;
  outer_ctx.copy_store = &store;
  const Bf16ReuseRegion outer(outer_ctx);
  EXPECT_EQ(p.input_grad(outer.context()), dx);  // the outer region reads d_g and w
  {
    const Bf16ReuseRegion inner(outer.context());
    EXPECT_EQ(p.weight_grad(inner.context()), dw);  // the inner one d_g and x
  }
  for (float& v : p.x) v = -v;  // x is the inner region's: it may change once that region closed
  std::vector<float> negated = dw;
  for (float& v : negated) v = -v;
  EXPECT_EQ(p.weight_grad(outer.context()), negated);
  EXPECT_EQ(p.input_grad(outer.context()), dx);
}

// x [rows, cols] (row stride ld) in bf16 as Bf16Rows lays it out: [bf16_padded_rows(rows), cols], zero rows after.
std::vector<uint16_t> bf16_rows(const float* x, int64_t ld, int64_t rows, int64_t cols) {
  std::vector<uint16_t> out(bf16_padded_rows(rows) * cols, 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[r * cols + c] = to_bf16(x[r * ld + c]);
  return out;
}

// An operand given already in bf16 (the A of a forward, or the B of a weight gradient) gives the float GEMM's
// product exactly on integer matrices, for row counts with and without a partial block, every alpha and beta, both
// layouts of the other operand, and a weight read from the mirror.
TEST(GemmBf16, OperandsGivenInBf16GiveTheSameProducts) {
  const auto value = [](int64_t i) { return static_cast<float>((i * 7919) % 17 - 8); };
  for (const auto& [alpha, beta] : {std::pair{1.0f, 0.0f}, std::pair{0.5f, 2.0f}})
    for (int64_t rows : {int64_t{37}, int64_t{64}, int64_t{150}}) {
      SCOPED_TRACE(::testing::Message() << "alpha " << alpha << " rows " << rows);
      // A given in bf16: C [rows, N] = alpha A [rows, depth] · op(B) + beta C.
      for (int64_t depth : {int64_t{64}, int64_t{45}})
        for (Trans tb : {Trans::N, Trans::T})
          for (bool mirror : {false, true}) {
            SCOPED_TRACE(::testing::Message()
                         << "depth " << depth << " tb " << (tb == Trans::T) << " mirror " << mirror);
            const Case k{Trans::N, tb, rows, 29, depth, 3, alpha, beta};
            Operands x = operands(k, value);
            Operands y = x;
            const std::vector<uint16_t> a = bf16_rows(x.a.data(), x.lda, rows, depth);
            std::vector<uint16_t> b_bf16(x.b.size());
            to_bf16(x.b.data(), static_cast<int64_t>(x.b.size()), b_bf16.data());
            ComputeContext ctx;
            if (mirror) ctx.mirror = {x.b.data(), static_cast<int64_t>(x.b.size()), b_bf16.data()};
            gemm_bf16(ctx, Bf16Rows{a.data(), rows, depth}, tb, k.N, alpha, x.b.data(), x.ldb, beta, x.c.data(), x.ldc);
            gemm(k.ta, k.tb, k.M, k.N, k.K, alpha, y.a.data(), y.lda, y.b.data(), y.ldb, beta, y.c.data(), y.ldc);
            EXPECT_EQ(x.c, y.c);  // the padding columns of C included: left alone
          }
      // B given in bf16: C [M, cols] = alpha Aᵀ B [depth = rows, cols] + beta C, A stored [rows, M].
      const Case k{Trans::T, Trans::N, 29, 48, rows, 3, alpha, beta};
      Operands x = operands(k, value);
      Operands y = x;
      const std::vector<uint16_t> b = bf16_rows(x.b.data(), x.ldb, rows, k.N);
      gemm_bf16(kConvertAll, k.M, alpha, x.a.data(), x.lda, Bf16Rows{b.data(), rows, k.N}, beta, x.c.data(), x.ldc);
      gemm(k.ta, k.tb, k.M, k.N, k.K, alpha, y.a.data(), y.lda, y.b.data(), y.ldb, beta, y.c.data(), y.ldc);
      EXPECT_EQ(x.c, y.c);
    }
}

// With no depth (an A of no columns, a B of no rows) the product is C = beta C, as cpu::gemm makes it.
TEST(GemmBf16, OperandsGivenInBf16WithNoDepthScaleC) {
  const std::vector<uint16_t> none(64 * 5, 0);  // room for a padded block; no value is read
  for (float beta : {0.0f, 2.0f}) {
    std::vector<float> c(3 * 5, 1.5f), b(5, 1.0f);
    gemm_bf16(kConvertAll, Bf16Rows{none.data(), 3, 0}, Trans::T, 5, 1.0f, b.data(), 1, beta, c.data(), 5);
    EXPECT_EQ(c, std::vector<float>(3 * 5, 1.5f * beta));
    std::vector<float> c2(3 * 5, 1.5f), a(3, 1.0f);
    gemm_bf16(kConvertAll, 3, 1.0f, a.data(), 3, Bf16Rows{none.data(), 0, 5}, beta, c2.data(), 5);
    EXPECT_EQ(c2, std::vector<float>(3 * 5, 1.5f * beta));
  }
}

TEST(GemmBf16, RoundsToNearestEven) {
  EXPECT_EQ(to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);      // halfway between 1 and 1 + 2^-7: to even
  EXPECT_EQ(to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);  // halfway, odd below: up
  EXPECT_EQ(to_bf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -12)), 0x3f81);  // above halfway: up
  EXPECT_EQ(from_bf16(to_bf16(-2.5f)), -2.5f);
}

// The context's precision decides what cpu::gemm runs: bf16 the bf16 product, f32 (and with_f32_products of a
// bf16 context) sgemm, the same bits as the GEMM without a context.
TEST(GemmBf16, TheContextsPrecisionRoutesTheFloatGemm) {
  const Case k{Trans::N, Trans::N, 16, 16, 64, 0, 1.0f, 0.0f};
  Rng rng(3, 0);
  Operands x = operands(k, [&](int64_t) { return static_cast<float>(rng.normal()); });
  Operands plain = x, f32 = x, f32_of_bf16 = x, bf16 = x, direct = x;
  ComputeContext bf16_ctx;
  bf16_ctx.precision = GemmPrecision::Bf16;
  const auto run = [&](const ComputeContext& ctx, Operands& o) {
    gemm(ctx, k.ta, k.tb, k.M, k.N, k.K, 1.0f, o.a.data(), o.lda, o.b.data(), o.ldb, 0.0f, o.c.data(), o.ldc);
  };
  gemm(k.ta, k.tb, k.M, k.N, k.K, 1.0f, plain.a.data(), plain.lda, plain.b.data(), plain.ldb, 0.0f, plain.c.data(),
       plain.ldc);
  run(ComputeContext{}, f32);
  run(bf16_ctx.with_f32_products(), f32_of_bf16);
  run(bf16_ctx, bf16);
  gemm_bf16(kConvertAll, k.ta, k.tb, k.M, k.N, k.K, 1.0f, direct.a.data(), direct.lda, direct.b.data(), direct.ldb,
            0.0f, direct.c.data(), direct.ldc);
  EXPECT_EQ(f32.c, plain.c);
  EXPECT_EQ(f32_of_bf16.c, plain.c);
  EXPECT_EQ(bf16.c, direct.c);
  EXPECT_NE(bf16.c, plain.c);
}

}  // namespace
}  // namespace moelab::cpu
