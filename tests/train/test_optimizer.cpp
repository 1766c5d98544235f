// AdamW, the learning-rate schedule and gradient clipping against plain formulas.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "backend/cpu/bf16.h"
#include "support/gradcheck.h"
#include "support/omp_threads.h"
#include "train/adamw.h"
#include "train/grad_clip.h"
#include "train/schedule.h"

namespace moelab {
namespace {

// torch.optim.AdamW's update written out for one scalar, step by step.
double reference_adamw(double p, const std::vector<double>& grads, double lr, double b1, double b2, double eps,
                       double wd) {
  double m = 0, v = 0;
  for (size_t t = 1; t <= grads.size(); ++t) {
    const double g = grads[t - 1];
    p *= 1 - lr * wd;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    const double m_hat = m / (1 - std::pow(b1, t)), v_hat = v / (1 - std::pow(b2, t));
    p -= lr * m_hat / (std::sqrt(v_hat) + eps);
  }
  return p;
}

TEST(AdamW, MatchesTheTorchFormulaOverSeveralSteps) {
  const int64_t n = 37, steps = 5;
  auto p0 = testing::random_vector(n, 1);
  std::vector<std::vector<double>> grads;
  for (int s = 0; s < steps; ++s) grads.push_back(testing::random_vector(n, 10 + s));
  for (double wd : {0.0, 0.1}) {
    std::vector<double> p = p0, m(n, 0.0), v(n, 0.0);
    for (int s = 0; s < steps; ++s)
      adamw_step(p.data(), grads[s].data(), m.data(), v.data(), n, AdamWHyper{1e-2, 0.9, 0.95, 1e-8, wd, s + 1});
    for (int64_t i = 0; i < n; ++i) {
      std::vector<double> gi;
      for (int s = 0; s < steps; ++s) gi.push_back(grads[s][i]);
      EXPECT_NEAR(p[i], reference_adamw(p0[i], gi, 1e-2, 0.9, 0.95, 1e-8, wd), 1e-12) << "element " << i;
    }
  }
}

TEST(AdamW, FloatAgreesWithDouble) {
  const int64_t n = 1000;
  auto p = testing::random_vector(n, 2), g = testing::random_vector(n, 3);
  std::vector<float> pf(p.begin(), p.end()), gf(g.begin(), g.end()), mf(n, 0.f), vf(n, 0.f);
  std::vector<double> m(n, 0.0), v(n, 0.0);
  const AdamWHyper h{1e-3, 0.9, 0.95, 1e-8, 0.1, 1};
  adamw_step(p.data(), g.data(), m.data(), v.data(), n, h);
  adamw_step(pf.data(), gf.data(), mf.data(), vf.data(), n, h);
  EXPECT_LT(testing::max_rel_error(pf, p), 1e-6);
}

// The trainer clips by passing clip_factor to AdamW instead of scaling the gradients first: the same float product,
// so the same bits, and the gradients are left as they were.
TEST(AdamW, GradScaleEqualsClippingTheGradientsFirst) {
  const int64_t n = 1000;
  auto p = testing::random_vector(n, 4), g = testing::random_vector(n, 5);
  std::vector<float> p_fused(p.begin(), p.end()), g_fused(g.begin(), g.end()), m_fused(n, 0.f), v_fused(n, 0.f);
  std::vector<float> p_clip = p_fused, g_clip = g_fused, m_clip = m_fused, v_clip = v_fused;
  const double norm = global_grad_norm(g_fused.data(), n);
  const float factor = clip_factor(norm, 0.5);
  ASSERT_LT(factor, 1.0f);
  EXPECT_EQ(clip_factor(norm, 2 * norm), 1.0f);
  EXPECT_EQ(clip_factor(norm, 0.0), 1.0f);
  AdamWHyper h{1e-3, 0.9, 0.95, 1e-8, 0.1, 3};
  clip_grad_norm(g_clip.data(), n, 0.5);
  adamw_step(p_clip.data(), g_clip.data(), m_clip.data(), v_clip.data(), n, h);
  h.grad_scale = factor;
  adamw_step(p_fused.data(), g_fused.data(), m_fused.data(), v_fused.data(), n, h);
  EXPECT_EQ(p_fused, p_clip);
  EXPECT_EQ(m_fused, m_clip);
  EXPECT_EQ(v_fused, v_clip);
  EXPECT_EQ(g_fused, std::vector<float>(g.begin(), g.end()));
}

// The trainer's pass also rounds the new weights into the bf16 copy and zeroes the gradients: the update itself
// must be the same bits as the plain pass, for every combination of the two.
TEST(AdamW, AlsoRoundingAndZeroingLeavesTheUpdateUnchanged) {
  const int64_t n = 1037;  // not a multiple of the vector width
  auto p = testing::random_vector(n, 6), g = testing::random_vector(n, 7);
  const std::vector<float> p0(p.begin(), p.end()), g0(g.begin(), g.end());
  const AdamWHyper h{1e-2, 0.9, 0.95, 1e-8, 0.1, 2, 0.75};
  std::vector<float> p_plain = p0, g_plain = g0, m_plain(n, 0.1f), v_plain(n, 0.2f);
  adamw_step(p_plain.data(), g_plain.data(), m_plain.data(), v_plain.data(), n, h);
  for (const bool round : {false, true})
    for (const bool zero : {false, true}) {
      std::vector<float> p_also = p0, g_also = g0, m_also(n, 0.1f), v_also(n, 0.2f);
      std::vector<uint16_t> bf16(n, 0xFFFF);
      adamw_step(p_also.data(), g_also.data(), m_also.data(), v_also.data(), n, h,
                 AdamWAlso{round ? bf16.data() : nullptr, zero});
      EXPECT_EQ(p_also, p_plain) << round << zero;
      EXPECT_EQ(m_also, m_plain) << round << zero;
      EXPECT_EQ(v_also, v_plain) << round << zero;
      EXPECT_EQ(g_also, zero ? std::vector<float>(n, 0.0f) : g0) << round << zero;
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(bf16[i], round ? cpu::to_bf16(p_plain[i]) : uint16_t{0xFFFF}) << i << " " << round << zero;
    }
}

// The float pass that writes the bf16 copy streams whole 64-byte lines of it and handles the ends apart: every
// alignment of the copy and every length, on one thread or two, gives the plain pass's update and exactly the
// rounded weights, and writes nothing outside the copy.
TEST(AdamW, RoundingPassAtAnyAlignmentAndLengthOnOneThreadOrTwo) {
  const AdamWHyper h{1e-2, 0.9, 0.95, 1e-8, 0.1, 3, 0.5};
  constexpr uint16_t kGuard = 0xABCD;
  for (int threads : {1, 2}) {
    const testing::OmpThreads scope(threads);
    for (int64_t offset : {0, 1, 7, 16, 31})
      for (int64_t n : {1, 15, 16, 17, 31, 32, 33, 64, 100, 1037, 70001}) {
        auto p = testing::random_vector(n, 8), g = testing::random_vector(n, 9);
        const std::vector<float> p0(p.begin(), p.end()), g0(g.begin(), g.end());
        std::vector<float> p_plain = p0, g_plain = g0, m_plain(n, 0.1f), v_plain(n, 0.2f);
        adamw_step(p_plain.data(), g_plain.data(), m_plain.data(), v_plain.data(), n, h);
        std::vector<float> p_round = p0, g_round = g0, m_round(n, 0.1f), v_round(n, 0.2f);
        std::vector<uint16_t> copy(offset + n + 40, kGuard);  // [offset + n + 40], 64-byte aligned when large
        adamw_step(p_round.data(), g_round.data(), m_round.data(), v_round.data(), n, h,
                   AdamWAlso{copy.data() + offset, true});
        ASSERT_EQ(p_round, p_plain) << "offset " << offset << " n " << n;
        ASSERT_EQ(m_round, m_plain) << "offset " << offset << " n " << n;
        ASSERT_EQ(v_round, v_plain) << "offset " << offset << " n " << n;
        ASSERT_EQ(g_round, std::vector<float>(n, 0.0f)) << "offset " << offset << " n " << n;
        for (int64_t i = 0; i < static_cast<int64_t>(copy.size()); ++i) {
          const bool inside = i >= offset && i < offset + n;
          ASSERT_EQ(copy[i], inside ? cpu::to_bf16(p_plain[i - offset]) : kGuard)
              << "offset " << offset << " n " << n << " index " << i;
        }
      }
  }
}

TEST(Schedule, WarmupThenCosineToTheFloor) {
  TrainConfig tc;
  tc.lr = 1e-3, tc.warmup_steps = 10, tc.steps = 110, tc.min_lr_ratio = 0.1;
  EXPECT_DOUBLE_EQ(learning_rate(tc, 0), 1e-4);
  EXPECT_DOUBLE_EQ(learning_rate(tc, 4), 5e-4);
  EXPECT_DOUBLE_EQ(learning_rate(tc, 9), 1e-3);
  EXPECT_DOUBLE_EQ(learning_rate(tc, 10), 1e-3);                        // cosine starts at the peak
  EXPECT_NEAR(learning_rate(tc, 60), 1e-3 * (0.1 + 0.9 * 0.5), 1e-15);  // half way: the mean of peak and floor
  EXPECT_NEAR(learning_rate(tc, 110), 1e-4, 1e-15);                     // the floor at the end
  for (int s = 11; s < 110; ++s) EXPECT_LT(learning_rate(tc, s), learning_rate(tc, s - 1));
}

TEST(GradClip, ScalesToTheThresholdOnlyWhenAbove) {
  std::vector<float> g = {3.0f, 4.0f};  // norm 5
  EXPECT_NEAR(clip_grad_norm(g.data(), 2, 10.0), 5.0, 1e-12);
  EXPECT_FLOAT_EQ(g[0], 3.0f);
  EXPECT_NEAR(clip_grad_norm(g.data(), 2, 1.0), 5.0, 1e-12);
  EXPECT_NEAR(std::hypot(g[0], g[1]), 1.0, 1e-5);
  EXPECT_NEAR(g[0] / g[1], 0.75, 1e-6);
  std::vector<float> big(100003, 1.0f);
  EXPECT_NEAR(global_grad_norm(big.data(), big.size()), std::sqrt(100003.0), 1e-9);
}

// Against a plain double sum of squares, on gradients of mixed magnitude and a length that is no multiple of the
// sum's blocks or lanes; and the same bits on one thread and on several.
TEST(GradClip, NormMatchesDoubleSumAndIgnoresThreadCount) {
  const int64_t n = 3 * 100003;
  std::vector<float> g(n);
  std::vector<double> mags = testing::random_vector(n, 31);
  for (int64_t i = 0; i < n; ++i) g[i] = static_cast<float>(mags[i] * (i % 7 == 0 ? 50.0 : 0.01));
  double exact = 0;
  for (float x : g) exact += static_cast<double>(x) * x;
  const double norm = global_grad_norm(g.data(), n);
  EXPECT_NEAR(norm, std::sqrt(exact), 1e-6 * std::sqrt(exact));
  double one_thread = 0;
  {
    const testing::OmpThreads single(1);
    one_thread = global_grad_norm(g.data(), n);
  }
  EXPECT_EQ(one_thread, norm);
}

}  // namespace
}  // namespace moelab
