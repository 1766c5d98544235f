#include "ops/rope.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace moelab::ops {
namespace {

// Below this many elements the OpenMP fork costs more than it saves.
constexpr int64_t kParallelElements = 1 << 15;

// cos / sin of t * theta^(-2i/D) for t < positions, i < D/2, as [positions, D/2] each.
template <typename Real>
struct RopeTable {
  int64_t D = 0;
  double theta = 0;
  int64_t positions = 0;
  std::vector<Real> cos, sin;
};

// The table for (D, theta) covering at least T positions. It is kept per thread between calls: every attention
// layer, forward and backward, asks for the same one, and recomputing T * D/2 double sines and cosines per call
// would cost more than the rotation itself. Rows never depend on how many positions the table holds, so the cache
// cannot change a result.
template <typename Real>
const RopeTable<Real>& rope_table(int64_t T, int64_t D, double theta) {
  thread_local RopeTable<Real> table;
  if (table.D == D && table.theta == theta && table.positions >= T) return table;
  const bool same_frequencies = table.D == D && table.theta == theta;
  table.positions = same_frequencies ? std::max(T, table.positions) : T;
  table.D = D, table.theta = theta;
  const int64_t half = D / 2, P = table.positions;
  std::vector<double> inv_freq(half);
  for (int64_t i = 0; i < half; ++i) inv_freq[i] = std::pow(theta, -2.0 * static_cast<double>(i) / D);
  table.cos.resize(P * half), table.sin.resize(P * half);
  // Plain pointers into this thread's table: inside the parallel region the name `table` would mean each worker
  // thread's own (empty) thread_local copy.
  Real* cos_table = table.cos.data();
  Real* sin_table = table.sin.data();
#pragma omp parallel for schedule(static) if (P * half >= kParallelElements / 8)
  for (int64_t t = 0; t < P; ++t) {
    for (int64_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(t) * inv_freq[i];
      cos_table[t * half + i] = static_cast<Real>(std::cos(angle));
      sin_table[t * half + i] = static_cast<Real>(std::sin(angle));
    }
  }
  return table;
}

// Rotates every head vector of x by its position's angles; Inverse rotates by the negated angles.
template <bool Inverse, typename Real>
void rotate(Real* x /*[B,T,H,D]*/, int64_t B, int64_t T, int64_t H, int64_t D, double theta) {
  MOELAB_ASSERT(D % 2 == 0, "rope needs an even head dimension");
  const RopeTable<Real>& table = rope_table<Real>(T, D, theta);
  const int64_t half = D / 2;
#pragma omp parallel for schedule(static) if (B * T * H * D >= kParallelElements)
  for (int64_t bt = 0; bt < B * T; ++bt) {
    const Real* cs = table.cos.data() + (bt % T) * half;
    const Real* sn = table.sin.data() + (bt % T) * half;
    for (int64_t h = 0; h < H; ++h) {
      Real* lo = x + (bt * H + h) * D;
      Real* hi = lo + half;
#pragma omp simd
      for (int64_t i = 0; i < half; ++i) {
        const Real a = lo[i], b = hi[i], s = Inverse ? -sn[i] : sn[i];
        lo[i] = a * cs[i] - b * s;
        hi[i] = b * cs[i] + a * s;
      }
    }
  }
}

}  // namespace

template <typename Real>
void rope_forward(Real* x /*[B,T,H,D] rotated in place*/, int64_t B, int64_t T, int64_t H, int64_t D, double theta) {
  rotate<false>(x, B, T, H, D, theta);
}

template <typename Real>
void rope_backward(Real* d_x /*[B,T,H,D] in place*/, int64_t B, int64_t T, int64_t H, int64_t D, double theta) {
  rotate<true>(d_x, B, T, H, D, theta);
}

template void rope_forward<float>(float*, int64_t, int64_t, int64_t, int64_t, double);
template void rope_forward<double>(double*, int64_t, int64_t, int64_t, int64_t, double);
template void rope_backward<float>(float*, int64_t, int64_t, int64_t, int64_t, double);
template void rope_backward<double>(double*, int64_t, int64_t, int64_t, int64_t, double);

}  // namespace moelab::ops
