#include "routing/load_balance_loss.h"

#include <vector>

namespace moelab::routing {
namespace {

// Below this many elements the backward's OpenMP fork costs more than the additions.
constexpr int64_t kParallelElements = 1 << 15;

}  // namespace

template <typename T>
double load_balance_forward(const T* probs /*[N,E]*/, const DispatchPlan<T>& plan, double f_divisor) {
  const int64_t N = plan.n_tokens, E = plan.n_experts;
  if (N == 0) return 0.0;
  // Column sums in double, rows in order: deterministic, and N*E is small enough (E <= 64) for one thread.
  std::vector<double> prob_sum(E, 0.0);
  for (int64_t t = 0; t < N; ++t) {
    const T* p = probs + t * E;
#pragma omp simd
    for (int64_t i = 0; i < E; ++i) prob_sum[i] += static_cast<double>(p[i]);
  }
  double loss = 0;
  for (int64_t i = 0; i < E; ++i) {
    const double f = plan.expert_rows(i) / (static_cast<double>(N) * f_divisor);
    loss += f * (prob_sum[i] / static_cast<double>(N));
  }
  return static_cast<double>(E) * loss;
}

template <typename T>
void load_balance_backward(T* d_probs /*[N,E] added to*/, double coef, const DispatchPlan<T>& plan, double f_divisor) {
  const int64_t N = plan.n_tokens, E = plan.n_experts;
  if (N == 0) return;
  // The gradient is the same row for every token: coef * E * f_i / N.
  std::vector<T> row(E);
  for (int64_t i = 0; i < E; ++i) {
    const double f = plan.expert_rows(i) / (static_cast<double>(N) * f_divisor);
    row[i] = static_cast<T>(coef * static_cast<double>(E) * f / static_cast<double>(N));
  }
  const T* g = row.data();
#pragma omp parallel for schedule(static) if (N * E >= kParallelElements)
  for (int64_t t = 0; t < N; ++t) {
    T* dp = d_probs + t * E;
#pragma omp simd
    for (int64_t i = 0; i < E; ++i) dp[i] += g[i];
  }
}

template double load_balance_forward<float>(const float*, const DispatchPlan<float>&, double);
template double load_balance_forward<double>(const double*, const DispatchPlan<double>&, double);
template void load_balance_backward<float>(float*, double, const DispatchPlan<float>&, double);
template void load_balance_backward<double>(double*, double, const DispatchPlan<double>&, double);

}  // namespace moelab::routing
