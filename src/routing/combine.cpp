#include "routing/combine.h"

#include <algorithm>

namespace moelab::routing {
namespace {

// Tokens are independent; below this many elements the OpenMP fork costs more than the work.
constexpr int64_t kParallelElements = 1 << 15;

}  // namespace

template <typename T>
void combine_forward(T* out /*[N,C]*/, const T* y_grouped /*[S,C]*/, const DispatchPlan<T>& plan, int64_t C) {
  const int64_t N = plan.n_tokens;
  const int32_t* offsets = plan.token_offsets.data();
  const int32_t* slot_row = plan.slot_row.data();
  const T* weight = plan.slot_weight.data();
#pragma omp parallel for schedule(static) if (N * C >= kParallelElements)
  for (int64_t t = 0; t < N; ++t) {
    T* o = out + t * C;
    const int32_t begin = offsets[t], end = offsets[t + 1];
    if (begin == end) {
      std::fill_n(o, C, T(0));
      continue;
    }
    // The first slot assigns, the others add: one pass over the output row per slot, no separate zeroing.
    const T w0 = weight[begin];
    const T* y0 = y_grouped + int64_t{slot_row[begin]} * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) o[c] = w0 * y0[c];
    for (int32_t s = begin + 1; s < end; ++s) {
      const T w = weight[s];
      const T* y = y_grouped + int64_t{slot_row[s]} * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) o[c] += w * y[c];
    }
  }
}

template <typename T>
void combine_backward(T* d_y_grouped /*[S,C] assigned*/, T* d_slot_weight /*[S] assigned*/, const T* d_out /*[N,C]*/,
                      const T* y_grouped /*[S,C]*/, const DispatchPlan<T>& plan, int64_t C) {
  const int64_t N = plan.n_tokens;
  const int32_t* offsets = plan.token_offsets.data();
  const int32_t* slot_row = plan.slot_row.data();
  const T* weight = plan.slot_weight.data();
#pragma omp parallel for schedule(static) if (N * C >= kParallelElements)
  for (int64_t t = 0; t < N; ++t) {
    const T* g = d_out + t * C;
    for (int32_t s = offsets[t]; s < offsets[t + 1]; ++s) {
      const int64_t r = slot_row[s];
      const T* y = y_grouped + r * C;
      T* dy = d_y_grouped + r * C;
      const T w = weight[s];
      T dw = 0;
#pragma omp simd reduction(+ : dw)
      for (int64_t c = 0; c < C; ++c) {
        dy[c] = w * g[c];
        dw += g[c] * y[c];
      }
      d_slot_weight[s] = dw;
    }
  }
}

template void combine_forward<float>(float*, const float*, const DispatchPlan<float>&, int64_t);
template void combine_forward<double>(double*, const double*, const DispatchPlan<double>&, int64_t);
template void combine_backward<float>(float*, float*, const float*, const float*, const DispatchPlan<float>&, int64_t);
template void combine_backward<double>(double*, double*, const double*, const double*, const DispatchPlan<double>&,
                                       int64_t);

}  // namespace moelab::routing
