// The rate counters the kernel benchmarks report: work per iteration over real time.
#pragma once

#include <benchmark/benchmark.h>

namespace moelab::bench {

// "FLOP/s" with decimal prefixes (G = 1e9), to read against the machine's peak.
inline void set_flops(benchmark::State& state, double flops_per_iteration) {
  state.counters["FLOP/s"] = benchmark::Counter(flops_per_iteration, benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::kIs1000);
}

// "bytes/s" with binary prefixes (G = 2^30), for loops bound by memory bandwidth.
inline void set_bytes(benchmark::State& state, double bytes_per_iteration) {
  state.counters["bytes/s"] = benchmark::Counter(bytes_per_iteration, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1024);
}

}  // namespace moelab::bench
