// A parallel sum that is bit-identical for any thread count: the terms are cut into a fixed number of blocks
// whatever the number of threads; inside a block, term i goes to partial sum (i - block start) mod kLanes (eight
// independent chains the compiler can keep in one vector register, instead of one chain bound by the add's
// latency), the lanes are added in lane order, and the block sums in block order.
// Used where a reported scalar (an auxiliary loss, a gradient norm) must not depend on how the work was split.
#pragma once

#include <algorithm>
#include <cstdint>

namespace moelab {

// The fixed split, public so that a kernel summing in the same order elsewhere (cpu::copy_with_squares) can follow
// it and match ordered_sum bit for bit.
constexpr int64_t kOrderedSumBlocks = 64;
constexpr int64_t kOrderedSumLanes = 8;

// Sum over i in [0, n) of term(i), in double. parallel: whether to use OpenMP threads (small sums are faster alone).
template <typename Term>
double ordered_sum(int64_t n, bool parallel, const Term& term) {
  constexpr int64_t kBlocks = kOrderedSumBlocks, kLanes = kOrderedSumLanes;
  double partial[kBlocks];
  const int64_t per_block = (n + kBlocks - 1) / kBlocks;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t b = 0; b < kBlocks; ++b) {
    const int64_t lo = std::min(n, b * per_block), hi = std::min(n, (b + 1) * per_block);
    double lane[kLanes] = {};
    int64_t i = lo;
    for (; i + kLanes <= hi; i += kLanes)
      for (int64_t l = 0; l < kLanes; ++l) lane[l] += term(i + l);
    for (; i < hi; ++i) lane[(i - lo) % kLanes] += term(i);
    double sum = 0;
    for (int64_t l = 0; l < kLanes; ++l) sum += lane[l];
    partial[b] = sum;
  }
  double total = 0;
  for (int64_t b = 0; b < kBlocks; ++b) total += partial[b];
  return total;
}

// Below this many values a sum of squares runs on one thread: starting a team costs more than the work.
constexpr int64_t kSumOfSquaresParallelValues = int64_t{1} << 16;

// Sum over i in [0, n) of x[i]^2 in double, in ordered_sum's order: a gradient norm's square.
inline double sum_of_squares(const float* x /*[n]*/, int64_t n) {
  return ordered_sum(n, n >= kSumOfSquaresParallelValues, [&](int64_t i) { return static_cast<double>(x[i]) * x[i]; });
}

}  // namespace moelab
