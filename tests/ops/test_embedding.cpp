#include <gtest/gtest.h>
#include <omp.h>

#include <ostream>

#include "ops/embedding.h"
#include "support/gradcheck.h"
#include "support/omp_threads.h"

namespace moelab {
namespace {

using testing::OmpThreads;
using testing::random_vector;

std::vector<int32_t> random_ids(int64_t N, int64_t V, uint64_t seed) {
  Rng rng(seed, 1);
  std::vector<int32_t> ids(N);
  for (auto& id : ids) id = static_cast<int32_t>(rng.below(V));
  return ids;
}

// Plain reference: out[n,c] = table[ids[n],c].
std::vector<double> embedding_reference(const std::vector<int32_t>& ids, const std::vector<double>& table, int64_t N,
                                        int64_t C) {
  std::vector<double> out(N * C);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) out[n * C + c] = table[ids[n] * C + c];
  return out;
}

struct EmbeddingCase {
  int N, C, V;
};
void PrintTo(const EmbeddingCase& c, std::ostream* os) { *os << "N=" << c.N << " C=" << c.C << " V=" << c.V; }
class EmbeddingShapes : public ::testing::TestWithParam<EmbeddingCase> {};

TEST_P(EmbeddingShapes, ForwardFloatMatchesReference) {
  auto [N, C, V] = GetParam();
  auto ids = random_ids(N, V, 1);
  auto table = random_vector(V * C, 2);
  auto table_f = testing::to_float(table);
  std::vector<float> out(N * C);
  ops::embedding_forward(out.data(), ids.data(), table_f.data(), N, C);
  // A lookup is a copy: exact up to the float rounding of the table itself.
  EXPECT_EQ(out, testing::to_float(embedding_reference(ids, table, N, C)));
}

TEST_P(EmbeddingShapes, BackwardMatchesFiniteDifferences) {
  auto [N, C, V] = GetParam();
  auto ids = random_ids(N, V, 3);  // V < N in most shapes: repeated ids are the common case
  auto table = random_vector(V * C, 4), r = random_vector(N * C, 5);
  std::vector<double> d_table(V * C, 0.0), out(N * C);
  ops::embedding_backward(d_table.data(), r.data(), ids.data(), N, C);
  auto loss = [&] {
    ops::embedding_forward(out.data(), ids.data(), table.data(), N, C);
    return testing::dot(out, r);
  };
  // The analytic gradient above took the parallel path where the shape is large enough; the finite differences
  // run the forward hundreds of times, serially, since on a loaded machine each parallel region can wait a whole
  // time slice for a descheduled thread. (The forward's parallel path is checked by the forward test.)
  const OmpThreads serial(1);
  testing::expect_gradient_matches("d_table", table, d_table, loss);
}

TEST(Embedding, BackwardAccumulatesRepeatedIds) {
  const int64_t C = 3;
  const std::vector<int32_t> ids = {2, 0, 2, 2};
  const std::vector<double> d_out = {1, 2, 3, 10, 20, 30, 100, 200, 300, 1000, 2000, 3000};
  std::vector<double> d_table(4 * C, 0.5);  // prior contents must be kept: the table gradient accumulates
  ops::embedding_backward(d_table.data(), d_out.data(), ids.data(), 4, C);
  const std::vector<double> expected = {10.5, 20.5, 30.5, 0.5, 0.5, 0.5, 1101.5, 2202.5, 3303.5, 0.5, 0.5, 0.5};
  EXPECT_EQ(d_table, expected);
}

TEST(Embedding, BackwardIsIndependentOfThreadCount) {
  const int64_t N = 300, C = 173, V = 7;  // large enough for the parallel path; odd C splits unevenly
  auto ids = random_ids(N, V, 6);
  auto d_out = random_vector<float>(N * C, 7);
  auto run = [&](int threads) {
    const OmpThreads scope(threads);
    std::vector<float> d_table(V * C, 0.0f);
    ops::embedding_backward(d_table.data(), d_out.data(), ids.data(), N, C);
    return d_table;
  };
  const auto one = run(1);
  EXPECT_EQ(one, run(2));
  EXPECT_EQ(one, run(3));
}

INSTANTIATE_TEST_SUITE_P(Shapes, EmbeddingShapes,
                         ::testing::Values(EmbeddingCase{.N = 1, .C = 1, .V = 1}, EmbeddingCase{.N = 7, .C = 5, .V = 3},
                                           EmbeddingCase{.N = 13, .C = 31, .V = 11},
                                           EmbeddingCase{.N = 64, .C = 256, .V = 50},
                                           EmbeddingCase{.N = 211, .C = 163, .V = 17}));

}  // namespace
}  // namespace moelab
