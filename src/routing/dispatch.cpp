#include "routing/dispatch.h"

#include <algorithm>

namespace moelab::routing {
namespace {

// Rows are independent; below this many elements copying is cheaper than an OpenMP fork.
constexpr int64_t kParallelElements = 1 << 15;

}  // namespace

template <typename T>
void dispatch_forward(T* x_grouped /*[S,C]*/, const T* x /*[N,C]*/, const DispatchPlan<T>& plan, int64_t C) {
  const int64_t S = plan.n_slots();
  const int32_t* row_token = plan.row_token.data();
#pragma omp parallel for schedule(static) if (S * C >= kParallelElements)
  for (int64_t r = 0; r < S; ++r) std::copy_n(x + row_token[r] * C, C, x_grouped + r * C);
}

template <typename T>
void dispatch_backward(T* d_x /*[N,C] assigned*/, const T* d_x_grouped /*[S,C]*/, const DispatchPlan<T>& plan,
                       int64_t C) {
  const int64_t N = plan.n_tokens;
  const int32_t* offsets = plan.token_offsets.data();
  const int32_t* slot_row = plan.slot_row.data();
#pragma omp parallel for schedule(static) if (N * C >= kParallelElements)
  for (int64_t t = 0; t < N; ++t) {
    T* out = d_x + t * C;
    const int32_t begin = offsets[t], end = offsets[t + 1];
    if (begin == end) {
      std::fill_n(out, C, T(0));
      continue;
    }
    std::copy_n(d_x_grouped + int64_t{slot_row[begin]} * C, C, out);
    for (int32_t s = begin + 1; s < end; ++s) {
      const T* g = d_x_grouped + int64_t{slot_row[s]} * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) out[c] += g[c];
    }
  }
}

template void dispatch_forward<float>(float*, const float*, const DispatchPlan<float>&, int64_t);
template void dispatch_forward<double>(double*, const double*, const DispatchPlan<double>&, int64_t);
template void dispatch_backward<float>(float*, const float*, const DispatchPlan<float>&, int64_t);
template void dispatch_backward<double>(double*, const double*, const DispatchPlan<double>&, int64_t);

}  // namespace moelab::routing
