#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <vector>

#include "ops/attention.h"
#include "support/gradcheck.h"
#include "support/omp_threads.h"

namespace moelab {
namespace {

using testing::random_vector;

struct Shape {
  int64_t B, T, H, Hkv, D;
  int64_t q_size() const { return B * T * H * D; }
  int64_t kv_size() const { return B * T * Hkv * D; }
  int64_t lse_size() const { return B * H * T; }
};

void PrintTo(const Shape& s, std::ostream* os) {
  *os << "(B,T,H,Hkv,D)=(" << s.B << "," << s.T << "," << s.H << "," << s.Hkv << "," << s.D << ")";
}

struct Reference {
  std::vector<double> out, lse;  // [B,T,H,D], [B,H,T]
};

// Plain causal attention in double: scores, row max, exp, normalise, weighted sum of values, one query at a time;
// lse is the log-sum-exp of each query's scores.
Reference attention_reference(const std::vector<double>& q, const std::vector<double>& k, const std::vector<double>& v,
                              const Shape& s) {
  Reference r{std::vector<double>(s.q_size(), 0.0), std::vector<double>(s.lse_size(), 0.0)};
  const double scale = 1.0 / std::sqrt(static_cast<double>(s.D));
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h) {
      const int64_t g = h / (s.H / s.Hkv);
      for (int64_t t = 0; t < s.T; ++t) {
        std::vector<double> w(t + 1);
        for (int64_t j = 0; j <= t; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < s.D; ++d)
            dot += q[((b * s.T + t) * s.H + h) * s.D + d] * k[((b * s.T + j) * s.Hkv + g) * s.D + d];
          w[j] = dot * scale;
        }
        double m = w[0], sum = 0;
        for (double x : w) m = std::max(m, x);
        for (double& x : w) sum += (x = std::exp(x - m));
        r.lse[(b * s.H + h) * s.T + t] = m + std::log(sum);
        for (int64_t j = 0; j <= t; ++j) {
          for (int64_t d = 0; d < s.D; ++d)
            r.out[((b * s.T + t) * s.H + h) * s.D + d] += w[j] / sum * v[((b * s.T + j) * s.Hkv + g) * s.D + d];
        }
      }
    }
  return r;
}

// Inputs of moderate size: scores of order a few units, so the softmax is neither uniform nor one-hot.
struct Inputs {
  std::vector<double> q, k, v;
};
Inputs make_inputs(const Shape& s, uint64_t seed) {
  return {random_vector(s.q_size(), seed, 2.0), random_vector(s.kv_size(), seed + 1, 2.0),
          random_vector(s.kv_size(), seed + 2)};
}

void expect_float_forward_matches_reference(const Shape& s, uint64_t seed) {
  auto in = make_inputs(s, seed);
  auto q = testing::to_float(in.q), k = testing::to_float(in.k), v = testing::to_float(in.v);
  std::vector<float> out(s.q_size()), lse(s.lse_size());
  ops::attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), s.B, s.T, s.H, s.Hkv, s.D);
  auto ref = attention_reference(in.q, in.k, in.v, s);
  EXPECT_LT(testing::max_rel_error(out, ref.out), 1e-5);
  EXPECT_LT(testing::max_rel_error(lse, ref.lse), 1e-5);
}

// The float path (sgemm, vectorised exp) against the double path that the finite differences vouch for. The
// gradient buffers and lse start as NaN: backward assigns the gradients (never reads them), and forward must write
// every lse that backward reads.
void expect_float_backward_matches_double(const Shape& s, uint64_t seed) {
  auto in = make_inputs(s, seed);
  auto r = random_vector(s.q_size(), seed + 3);
  std::vector<double> out(s.q_size()), lse(s.lse_size());
  std::vector<double> d_q(s.q_size()), d_k(s.kv_size()), d_v(s.kv_size());
  ops::attention_forward(out.data(), lse.data(), in.q.data(), in.k.data(), in.v.data(), s.B, s.T, s.H, s.Hkv, s.D);
  ops::attention_backward({d_q.data(), d_k.data(), d_v.data()}, r.data(),
                          {in.q.data(), in.k.data(), in.v.data(), lse.data()}, {s.B, s.T, s.H, s.Hkv, s.D});

  auto q = testing::to_float(in.q), k = testing::to_float(in.k), v = testing::to_float(in.v);
  auto r_f = testing::to_float(r);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> out_f(s.q_size()), lse_f(s.lse_size(), nan);
  std::vector<float> d_q_f(s.q_size(), nan), d_k_f(s.kv_size(), nan), d_v_f(s.kv_size(), nan);
  ops::attention_forward(out_f.data(), lse_f.data(), q.data(), k.data(), v.data(), s.B, s.T, s.H, s.Hkv, s.D);
  ops::attention_backward({d_q_f.data(), d_k_f.data(), d_v_f.data()}, r_f.data(),
                          {q.data(), k.data(), v.data(), lse_f.data()}, {s.B, s.T, s.H, s.Hkv, s.D});
  EXPECT_LT(testing::max_rel_error(d_q_f, d_q), 1e-5);
  EXPECT_LT(testing::max_rel_error(d_k_f, d_k), 1e-5);
  EXPECT_LT(testing::max_rel_error(d_v_f, d_v), 1e-5);
}

class AttentionShapes : public ::testing::TestWithParam<Shape> {};

TEST_P(AttentionShapes, ForwardFloatMatchesReference) { expect_float_forward_matches_reference(GetParam(), 11); }

TEST_P(AttentionShapes, ForwardDoubleMatchesReference) {
  const Shape s = GetParam();
  auto in = make_inputs(s, 12);
  std::vector<double> out(s.q_size()), lse(s.lse_size());
  ops::attention_forward(out.data(), lse.data(), in.q.data(), in.k.data(), in.v.data(), s.B, s.T, s.H, s.Hkv, s.D);
  auto ref = attention_reference(in.q, in.k, in.v, s);
  EXPECT_LT(testing::max_rel_error(out, ref.out), 1e-12);
  EXPECT_LT(testing::max_rel_error(lse, ref.lse), 1e-12);
}

// Every row's log-sum-exp is written (the buffer starts as NaN), and it is at least the row's largest score: the
// bound backward's exp(s - lse) relies on.
TEST_P(AttentionShapes, ForwardWritesEveryRowsLogSumExp) {
  const Shape s = GetParam();
  auto in = make_inputs(s, 13);
  auto q = testing::to_float(in.q), k = testing::to_float(in.k), v = testing::to_float(in.v);
  std::vector<float> out(s.q_size()), lse(s.lse_size(), std::numeric_limits<float>::quiet_NaN());
  ops::attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), s.B, s.T, s.H, s.Hkv, s.D);
  const double scale = 1.0 / std::sqrt(static_cast<double>(s.D));
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h)
      for (int64_t t = 0; t < s.T; ++t) {
        const int64_t g = h / (s.H / s.Hkv);
        double top = -INFINITY;
        for (int64_t j = 0; j <= t; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < s.D; ++d)
            dot += q[((b * s.T + t) * s.H + h) * s.D + d] * k[((b * s.T + j) * s.Hkv + g) * s.D + d];
          top = std::max(top, dot * scale);
        }
        const float row_lse = lse[(b * s.H + h) * s.T + t];
        ASSERT_FALSE(std::isnan(row_lse)) << "b " << b << " h " << h << " t " << t;
        ASSERT_GE(row_lse, top - 1e-5) << "b " << b << " h " << h << " t " << t;
      }
}

// Inference keeps no log-sum-exp (null): the outputs must be the very bits of a forward that keeps it.
void expect_unkept_lse_gives_the_same_output(const Shape& s, uint64_t seed) {
  auto in = make_inputs(s, seed);
  auto q = testing::to_float(in.q), k = testing::to_float(in.k), v = testing::to_float(in.v);
  std::vector<float> kept(s.q_size()), unkept(s.q_size(), std::numeric_limits<float>::quiet_NaN());
  std::vector<float> lse(s.lse_size());
  ops::attention_forward(kept.data(), lse.data(), q.data(), k.data(), v.data(), s.B, s.T, s.H, s.Hkv, s.D);
  ops::attention_forward<float>(unkept.data(), nullptr, q.data(), k.data(), v.data(), s.B, s.T, s.H, s.Hkv, s.D);
  EXPECT_EQ(unkept, kept);
  EXPECT_LT(testing::max_rel_error(unkept, attention_reference(in.q, in.k, in.v, s).out), 1e-5);
}

TEST_P(AttentionShapes, ForwardWithoutKeptLseGivesTheSameOutput) {
  expect_unkept_lse_gives_the_same_output(GetParam(), 23);
}

TEST_P(AttentionShapes, BackwardMatchesFiniteDifferences) {
  const Shape s = GetParam();
  auto in = make_inputs(s, 14);
  auto r = random_vector(s.q_size(), 15);
  std::vector<double> out(s.q_size()), lse(s.lse_size());
  std::vector<double> d_q(s.q_size()), d_k(s.kv_size()), d_v(s.kv_size());
  ops::attention_forward(out.data(), lse.data(), in.q.data(), in.k.data(), in.v.data(), s.B, s.T, s.H, s.Hkv, s.D);
  ops::attention_backward({d_q.data(), d_k.data(), d_v.data()}, r.data(),
                          {in.q.data(), in.k.data(), in.v.data(), lse.data()}, {s.B, s.T, s.H, s.Hkv, s.D});
  auto loss = [&] {
    ops::attention_forward<double>(out.data(), nullptr, in.q.data(), in.k.data(), in.v.data(), s.B, s.T, s.H, s.Hkv,
                                   s.D);
    return testing::dot(out, r);
  };
  testing::expect_gradient_matches("d_q", in.q, d_q, loss);
  testing::expect_gradient_matches("d_k", in.k, d_k, loss);
  testing::expect_gradient_matches("d_v", in.v, d_v, loss);
}

TEST_P(AttentionShapes, BackwardFloatMatchesDouble) { expect_float_backward_matches_double(GetParam(), 16); }

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionShapes,
                         ::testing::Values(Shape{1, 1, 1, 1, 2}, Shape{2, 5, 3, 3, 4},
                                           Shape{1, 7, 4, 2, 6},   // grouped-query
                                           Shape{2, 16, 4, 1, 8},  // multi-query
                                           Shape{1, 33, 2, 2, 16},
                                           Shape{1, 131, 2, 1, 4}),  // spans three row blocks of the kernel
                         [](const ::testing::TestParamInfo<Shape>& info) {
                           const Shape& s = info.param;
                           std::ostringstream name;
                           name << "B" << s.B << "T" << s.T << "H" << s.H << "Hkv" << s.Hkv << "D" << s.D;
                           return name.str();
                         });

// The shapes above are small enough to run on one thread; this one is large enough for the OpenMP work split.
TEST(Attention, ParallelPathMatchesReference) {
  const Shape s{2, 150, 4, 2, 8};
  expect_float_forward_matches_reference(s, 21);
  expect_float_backward_matches_double(s, 22);
  expect_unkept_lse_gives_the_same_output(s, 24);
}

// Changing keys and values at position t+1 (and every later position) must leave outputs and log-sum-exps at
// positions <= t bit-identical, while outputs at t+1 do change. Checked on the float path across block borders.
TEST(Attention, IsCausal) {
  const Shape s{2, 150, 4, 2, 8};
  auto in = make_inputs(s, 18);
  auto q = testing::to_float(in.q), k = testing::to_float(in.k), v = testing::to_float(in.v);
  std::vector<float> out(s.q_size()), lse(s.lse_size());
  ops::attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), s.B, s.T, s.H, s.Hkv, s.D);
  for (int64_t t : {0, 5, 63, 64, 100, 148}) {
    auto k2 = k, v2 = v;
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t j = t + 1; j < s.T; ++j)
        for (int64_t i = 0; i < s.Hkv * s.D; ++i) {
          k2[(b * s.T + j) * s.Hkv * s.D + i] += 3.0f;
          v2[(b * s.T + j) * s.Hkv * s.D + i] -= 5.0f;
        }
    std::vector<float> out2(s.q_size()), lse2(s.lse_size());
    ops::attention_forward(out2.data(), lse2.data(), q.data(), k2.data(), v2.data(), s.B, s.T, s.H, s.Hkv, s.D);
    for (int64_t b = 0; b < s.B; ++b) {
      for (int64_t p = 0; p < s.T; ++p)
        for (int64_t i = 0; i < s.H * s.D; ++i) {
          const int64_t at = (b * s.T + p) * s.H * s.D + i;
          if (p <= t) {
            ASSERT_EQ(out[at], out2[at]) << "t " << t << " position " << p;
          }
        }
      for (int64_t h = 0; h < s.H; ++h)
        for (int64_t p = 0; p <= t; ++p) {
          const int64_t at = (b * s.H + h) * s.T + p;
          ASSERT_EQ(lse[at], lse2[at]) << "t " << t << " row " << p << " head " << h;
        }
      const int64_t next = (b * s.T + t + 1) * s.H * s.D;
      EXPECT_NE(out[next], out2[next]) << "the change at position " << t + 1 << " must reach its own output";
    }
  }
}

// Same inputs, same bits: the GQA sums over query heads run in a fixed order whatever the thread schedule.
TEST(Attention, BackwardIsDeterministic) {
  const Shape s{3, 97, 4, 2, 16};
  auto in = make_inputs(s, 19);
  auto q = testing::to_float(in.q), k = testing::to_float(in.k), v = testing::to_float(in.v);
  auto r = random_vector<float>(s.q_size(), 20);
  std::vector<float> out(s.q_size()), lse(s.lse_size());
  ops::attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), s.B, s.T, s.H, s.Hkv, s.D);
  std::vector<float> first[3], again[3];
  for (auto* grads : {first, again}) {
    grads[0].resize(s.q_size()), grads[1].resize(s.kv_size()), grads[2].resize(s.kv_size());
    ops::attention_backward({grads[0].data(), grads[1].data(), grads[2].data()}, r.data(),
                            {q.data(), k.data(), v.data(), lse.data()}, {s.B, s.T, s.H, s.Hkv, s.D});
  }
  for (int i = 0; i < 3; ++i) EXPECT_EQ(first[i], again[i]) << "gradient " << i;
}

// Attention's products run on each thread's own block (cpu::gemm without a context: f32, in a bf16 model too), so
// the thread count changes no bit, forward or backward (a shape large enough to split).
TEST(Attention, TheThreadCountChangesNoBit) {
  const Shape s{2, 150, 4, 2, 8};
  auto in = make_inputs(s, 25);
  auto q = testing::to_float(in.q), k = testing::to_float(in.k), v = testing::to_float(in.v);
  auto r = random_vector<float>(s.q_size(), 26);
  struct Run {
    std::vector<float> out, lse, d_q, d_k, d_v;
  };
  const auto run = [&] {
    Run x{std::vector<float>(s.q_size()), std::vector<float>(s.lse_size()), std::vector<float>(s.q_size()),
          std::vector<float>(s.kv_size()), std::vector<float>(s.kv_size())};
    ops::attention_forward(x.out.data(), x.lse.data(), q.data(), k.data(), v.data(), s.B, s.T, s.H, s.Hkv, s.D);
    ops::attention_backward({x.d_q.data(), x.d_k.data(), x.d_v.data()}, r.data(),
                            {q.data(), k.data(), v.data(), x.lse.data()}, {s.B, s.T, s.H, s.Hkv, s.D});
    return x;
  };
  const Run f32 = run();
  for (int threads : {1, 2}) {
    const testing::OmpThreads team(threads);
    const Run x = run();
    EXPECT_EQ(x.out, f32.out) << threads << " threads";
    EXPECT_EQ(x.lse, f32.lse) << threads << " threads";
    EXPECT_EQ(x.d_q, f32.d_q) << threads << " threads";
    EXPECT_EQ(x.d_k, f32.d_k) << threads << " threads";
    EXPECT_EQ(x.d_v, f32.d_v) << threads << " threads";
  }
}

}  // namespace
}  // namespace moelab
