#include <gtest/gtest.h>

#include <ostream>

#include "routing/dispatch.h"
#include "routing/random_plan.h"
#include "support/gradcheck.h"

namespace moelab {
namespace {

using testing::random_vector;

struct DispatchCase {
  int N, E, max_slots, C;
};
void PrintTo(const DispatchCase& c, std::ostream* os) {
  *os << "N=" << c.N << " E=" << c.E << " max_slots=" << c.max_slots << " C=" << c.C;
}
class DispatchShapes : public ::testing::TestWithParam<DispatchCase> {};

// Plain loops over the slot list, independent of the plan's row bookkeeping: slot s of token t lands at row
// slot_row[s], and the rows of d_x are the sums over each token's slots.
TEST_P(DispatchShapes, ForwardFloatMatchesPlainLoop) {
  auto [N, E, max_slots, C] = GetParam();
  auto plan = testing::random_plan<float>(N, E, max_slots, 31);
  auto x = random_vector<float>(N * C, 32);
  std::vector<float> xg(plan.n_slots() * C, -1.f);
  routing::dispatch_forward(xg.data(), x.data(), plan, C);
  for (int64_t t = 0; t < N; ++t)
    for (int32_t s = plan.token_offsets[t]; s < plan.token_offsets[t + 1]; ++s)
      for (int64_t c = 0; c < C; ++c) ASSERT_EQ(xg[plan.slot_row[s] * C + c], x[t * C + c]) << "slot " << s;
}

TEST_P(DispatchShapes, BackwardFloatMatchesPlainLoop) {
  auto [N, E, max_slots, C] = GetParam();
  auto plan = testing::random_plan<float>(N, E, max_slots, 33);
  auto g = random_vector(plan.n_slots() * C, 34);
  std::vector<double> ref(N * C, 0.0);
  for (int64_t t = 0; t < N; ++t)
    for (int32_t s = plan.token_offsets[t]; s < plan.token_offsets[t + 1]; ++s)
      for (int64_t c = 0; c < C; ++c) ref[t * C + c] += g[plan.slot_row[s] * C + c];
  auto g_f = testing::to_float(g);
  std::vector<float> d_x(N * C, 5.f);  // garbage: backward must assign, zero rows included
  routing::dispatch_backward(d_x.data(), g_f.data(), plan, C);
  EXPECT_LT(testing::max_rel_error(d_x, ref), 1e-6);
}

class DispatchGradient : public ::testing::TestWithParam<DispatchCase> {};

TEST_P(DispatchGradient, MatchesFiniteDifferences) {
  auto [N, E, max_slots, C] = GetParam();
  auto plan = testing::random_plan(N, E, max_slots, 35);
  auto x = random_vector(N * C, 36), r = random_vector(plan.n_slots() * C, 37);
  std::vector<double> xg(plan.n_slots() * C), d_x(N * C);
  routing::dispatch_backward(d_x.data(), r.data(), plan, C);
  auto loss = [&] {
    routing::dispatch_forward(xg.data(), x.data(), plan, C);
    return testing::dot(xg, r);
  };
  testing::expect_gradient_matches("d_x", x, d_x, loss);
}

// (N, E, max slots per token, C); (400, 16, 4, 96) crosses the threads threshold.
INSTANTIATE_TEST_SUITE_P(Shapes, DispatchShapes,
                         ::testing::Values(DispatchCase{.N = 1, .E = 1, .max_slots = 1, .C = 1},
                                           DispatchCase{.N = 7, .E = 3, .max_slots = 2, .C = 5},
                                           DispatchCase{.N = 31, .E = 8, .max_slots = 3, .C = 17},
                                           DispatchCase{.N = 400, .E = 16, .max_slots = 4, .C = 96}));
// Finite differences stay below the threads threshold: hundreds of forward calls, each cheap.
INSTANTIATE_TEST_SUITE_P(Shapes, DispatchGradient,
                         ::testing::Values(DispatchCase{.N = 1, .E = 1, .max_slots = 1, .C = 1},
                                           DispatchCase{.N = 7, .E = 3, .max_slots = 2, .C = 5},
                                           DispatchCase{.N = 31, .E = 8, .max_slots = 3, .C = 17},
                                           DispatchCase{.N = 53, .E = 16, .max_slots = 4, .C = 29}));

}  // namespace
}  // namespace moelab
