// A parallel sum that is bit-identical for any thread count: the terms are cut into a fixed number of blocks
// whatever the number of threads, each block is summed in order, and the block sums are added in block order.
// Used where a reported scalar (an auxiliary loss, a gradient norm) must not depend on how the work was split.
#pragma once

#include <algorithm>
#include <cstdint>

namespace moelab {

// Sum over i in [0, n) of term(i), in double. parallel: whether to use OpenMP threads (small sums are faster alone).
template <typename Term>
double ordered_sum(int64_t n, bool parallel, const Term& term) {
  constexpr int64_t kBlocks = 64;
  double partial[kBlocks];
  const int64_t per_block = (n + kBlocks - 1) / kBlocks;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t b = 0; b < kBlocks; ++b) {
    double sum = 0;
    for (int64_t i = b * per_block; i < std::min(n, (b + 1) * per_block); ++i) sum += term(i);
    partial[b] = sum;
  }
  double total = 0;
  for (int64_t b = 0; b < kBlocks; ++b) total += partial[b];
  return total;
}

}  // namespace moelab
