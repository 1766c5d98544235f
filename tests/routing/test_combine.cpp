#include <gtest/gtest.h>
#include <omp.h>

#include <ostream>

#include "routing/combine.h"
#include "routing/random_plan.h"
#include "support/gradcheck.h"

namespace moelab {
namespace {

using testing::random_vector;

// out[t] = sum over t's slots of w_s * y[slot_row[s]], as a plain double loop.
std::vector<double> combine_reference(const std::vector<double>& y, const routing::DispatchPlan<double>& plan,
                                      int64_t C) {
  std::vector<double> out(plan.n_tokens * C, 0.0);
  for (int64_t t = 0; t < plan.n_tokens; ++t)
    for (int32_t s = plan.token_offsets[t]; s < plan.token_offsets[t + 1]; ++s)
      for (int64_t c = 0; c < C; ++c) out[t * C + c] += plan.slot_weight[s] * y[plan.slot_row[s] * C + c];
  return out;
}

// The same plan with float weights.
routing::DispatchPlan<float> to_float(const routing::DispatchPlan<double>& p) {
  routing::DispatchPlan<float> f;
  f.n_tokens = p.n_tokens;
  f.n_experts = p.n_experts;
  f.token_offsets = p.token_offsets;
  f.slot_expert = p.slot_expert;
  f.slot_weight.assign(p.slot_weight.begin(), p.slot_weight.end());
  routing::build_expert_groups(f);
  return f;
}

struct CombineCase {
  int N, E, max_slots, C;
};
void PrintTo(const CombineCase& c, std::ostream* os) {
  *os << "N=" << c.N << " E=" << c.E << " max_slots=" << c.max_slots << " C=" << c.C;
}
class CombineShapes : public ::testing::TestWithParam<CombineCase> {};

TEST_P(CombineShapes, ForwardFloatMatchesReference) {
  auto [N, E, max_slots, C] = GetParam();
  auto plan = testing::random_plan(N, E, max_slots, 41);
  auto y = random_vector(plan.n_slots() * C, 42);
  auto y_f = testing::to_float(y);
  std::vector<float> out(N * C, 3.f);  // garbage: tokens with no slot must come out 0
  routing::combine_forward(out.data(), y_f.data(), to_float(plan), C);
  auto ref = combine_reference(y, plan, C);
  EXPECT_LT(testing::max_rel_error(out, ref), 1e-6);
  for (int64_t t = 0; t < N; ++t) {
    if (plan.token_offsets[t] != plan.token_offsets[t + 1]) continue;
    for (int64_t c = 0; c < C; ++c) ASSERT_EQ(out[t * C + c], 0.f) << "token " << t;
  }
}

class CombineGradient : public ::testing::TestWithParam<CombineCase> {};

TEST_P(CombineGradient, MatchesFiniteDifferences) {
  auto [N, E, max_slots, C] = GetParam();
  auto plan = testing::random_plan(N, E, max_slots, 43);
  const int64_t S = plan.n_slots();
  auto y = random_vector(S * C, 44), r = random_vector(N * C, 45);
  std::vector<double> out(N * C), d_y(S * C), d_w(S);
  routing::combine_backward(d_y.data(), d_w.data(), r.data(), y.data(), plan, C);
  auto loss = [&] {
    routing::combine_forward(out.data(), y.data(), plan, C);
    return testing::dot(out, r);
  };
  testing::expect_gradient_matches("d_y_grouped", y, d_y, loss);
  testing::expect_gradient_matches("d_slot_weight", plan.slot_weight, d_w, loss);
}

TEST_P(CombineShapes, BackwardFloatMatchesDouble) {
  auto [N, E, max_slots, C] = GetParam();
  auto plan = testing::random_plan(N, E, max_slots, 46);
  const int64_t S = plan.n_slots();
  auto y = random_vector(S * C, 47), r = random_vector(N * C, 48);
  std::vector<double> d_y(S * C), d_w(S);
  routing::combine_backward(d_y.data(), d_w.data(), r.data(), y.data(), plan, C);
  auto y_f = testing::to_float(y), r_f = testing::to_float(r);
  std::vector<float> d_y_f(S * C), d_w_f(S);
  routing::combine_backward(d_y_f.data(), d_w_f.data(), r_f.data(), y_f.data(), to_float(plan), C);
  EXPECT_LT(testing::max_rel_error(d_y_f, d_y), 1e-6);
  EXPECT_LT(testing::max_rel_error(d_w_f, d_w), 1e-5);
}

// (N, E, max slots per token, C); (400, 16, 4, 96) crosses the threads threshold.
INSTANTIATE_TEST_SUITE_P(Shapes, CombineShapes,
                         ::testing::Values(CombineCase{.N = 1, .E = 1, .max_slots = 1, .C = 1},
                                           CombineCase{.N = 7, .E = 3, .max_slots = 2, .C = 5},
                                           CombineCase{.N = 31, .E = 8, .max_slots = 3, .C = 17},
                                           CombineCase{.N = 400, .E = 16, .max_slots = 4, .C = 96}));
// Finite differences stay below the threads threshold: hundreds of forward calls, each cheap.
INSTANTIATE_TEST_SUITE_P(Shapes, CombineGradient,
                         ::testing::Values(CombineCase{.N = 1, .E = 1, .max_slots = 1, .C = 1},
                                           CombineCase{.N = 7, .E = 3, .max_slots = 2, .C = 5},
                                           CombineCase{.N = 31, .E = 8, .max_slots = 3, .C = 17},
                                           CombineCase{.N = 53, .E = 16, .max_slots = 4, .C = 29}));

// Same inputs, one thread or two: bit-identical results.
TEST(Combine, IndependentOfThreadCount) {
  const int64_t N = 256, C = 128;
  auto plan = to_float(testing::random_plan(N, 8, 3, 49));
  auto y = random_vector<float>(plan.n_slots() * C, 50), g = random_vector<float>(N * C, 51);
  auto run = [&](int threads) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    std::vector<float> out(N * C), d_y(plan.n_slots() * C), d_w(plan.n_slots());
    routing::combine_forward(out.data(), y.data(), plan, C);
    routing::combine_backward(d_y.data(), d_w.data(), g.data(), y.data(), plan, C);
    omp_set_num_threads(saved);
    out.insert(out.end(), d_y.begin(), d_y.end());
    out.insert(out.end(), d_w.begin(), d_w.end());
    return out;
  };
  EXPECT_EQ(run(1), run(2));
}

}  // namespace
}  // namespace moelab
