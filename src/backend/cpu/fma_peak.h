// The machine's FP32 FMA peak, measured: every OpenMP thread runs independent chains of fused multiply-adds on the
// widest vectors the compiler targets (-march=native: AVX-512 where present), enough chains to hide the FMA
// latency. Model-FLOP utilisation figures (moelab bench, bench/) are fractions of this number.
#pragma once

#include <cstdint>

namespace moelab::cpu {

// FLOPs one call of fma_peak_kernel() does on all threads, and the kernel itself (returns a value that depends on
// every chain, so the compiler cannot drop the work).
double fma_peak_flops_per_call();
float fma_peak_kernel();

// Runs the kernel `repeats` times and returns the best GFLOP/s.
double measure_fma_peak_gflops(int repeats = 5);

}  // namespace moelab::cpu
