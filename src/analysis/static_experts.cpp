#include "analysis/static_experts.h"

// GCC 12 reports false -Wmaybe-uninitialized warnings inside the AVX-512 intrinsics Eigen's products inline.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <Eigen/Dense>
#pragma GCC diagnostic pop
#include <dlib/optimization/max_cost_assignment.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "backend/cpu/gemm.h"
#include "core/error.h"

namespace moelab::analysis {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Below about this many multiply-adds a parallel region costs more than it saves (tests, tiny layers).
constexpr int64_t kParallelWork = int64_t{1} << 20;

template <typename T>
std::vector<double> gram(const std::vector<const T*>& v, int64_t n) {
  const int64_t E = static_cast<int64_t>(v.size());
  std::vector<std::pair<int64_t, int64_t>> pairs;  // [E(E+1)/2] (i, j) with i <= j
  for (int64_t i = 0; i < E; ++i)
    for (int64_t j = i; j < E; ++j) pairs.emplace_back(i, j);
  std::vector<double> g(E * E);  // [E,E]
  const int64_t P = static_cast<int64_t>(pairs.size());
  // One pair per iteration, each dot product summed sequentially: the result does not depend on the threads.
#pragma omp parallel for schedule(static) if (P * n >= kParallelWork)
  for (int64_t p = 0; p < P; ++p) {
    const auto [i, j] = pairs[p];
    const T* x = v[i];  // [n]
    const T* y = v[j];  // [n]
    double s = 0;
    for (int64_t k = 0; k < n; ++k) s += static_cast<double>(x[k]) * static_cast<double>(y[k]);
    g[i * E + j] = g[j * E + i] = s;
  }
  return g;
}

// In place: g[i,j] / sqrt(g[i,i] g[j,j]); a zero vector (g[i,i] = 0) has cosine 0 with everything.
std::vector<double> gram_to_cosine(std::vector<double> g /*[E,E]*/, int64_t E) {
  std::vector<double> norm(E);  // [E]
  for (int64_t i = 0; i < E; ++i) norm[i] = std::sqrt(g[i * E + i]);
  for (int64_t i = 0; i < E; ++i)
    for (int64_t j = 0; j < E; ++j) {
      const double nn = norm[i] * norm[j];
      g[i * E + j] = nn > 0 ? g[i * E + j] / nn : 0.0;
    }
  return g;
}

// Expert e's neurons `neurons` as unit rows [m, 3d]: (w1 row n, w3 row n, w2 column n) / its norm (a zero neuron
// stays 0).
std::vector<float> unit_neurons(const ExpertWeights& w, int64_t e, const std::vector<int64_t>& neurons /*[m]*/) {
  const int64_t d = w.d, h = w.h, D = 3 * d, m = static_cast<int64_t>(neurons.size());
  const float* w1 = w.w1[e];      // [h,d]
  const float* w3 = w.w3[e];      // [h,d]
  const float* w2 = w.w2[e];      // [d,h]
  std::vector<float> out(m * D);  // [m,3d]
  for (int64_t i = 0; i < m; ++i) {
    const int64_t n = neurons[i];
    float* row = out.data() + i * D;  // [3d]
    double ss = 0;
    for (int64_t c = 0; c < d; ++c) {
      row[c] = w1[n * d + c], row[d + c] = w3[n * d + c], row[2 * d + c] = w2[c * h + n];
    }
    for (int64_t c = 0; c < D; ++c) ss += static_cast<double>(row[c]) * row[c];
    const double inv = ss > 0 ? 1.0 / std::sqrt(ss) : 0.0;
    for (int64_t c = 0; c < D; ++c) row[c] = static_cast<float>(row[c] * inv);
  }
  return out;
}

// Flattened cosine between a [rows,cols] and b, over a's neurons na[i] against b's neurons nb[i]: the neuron axis is
// the rows (w1, w3: neuron_is_row) or the columns (w2). na = nb = every neuron gives the plain flattened cosine.
double matched_cosine(const float* a, const float* b, int64_t rows, int64_t cols, bool neuron_is_row,
                      const std::vector<int64_t>& na /*[m]*/, const std::vector<int64_t>& nb /*[m]*/) {
  const int64_t m = static_cast<int64_t>(na.size()), other = neuron_is_row ? cols : rows;
  double dot = 0, sa = 0, sb = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t c = 0; c < other; ++c) {
      const double x = neuron_is_row ? a[na[i] * cols + c] : a[c * cols + na[i]];
      const double y = neuron_is_row ? b[nb[i] * cols + c] : b[c * cols + nb[i]];
      dot += x * y, sa += x * x, sb += y * y;
    }
  return sa > 0 && sb > 0 ? dot / std::sqrt(sa * sb) : 0.0;
}

std::array<double, kMatrixKinds> kind_cosines(const ExpertWeights& w, int64_t a, int64_t b,
                                              const std::vector<int64_t>& na /*[m]*/,
                                              const std::vector<int64_t>& nb /*[m]*/) {
  return {matched_cosine(w.w1[a], w.w1[b], w.h, w.d, true, na, nb),
          matched_cosine(w.w3[a], w.w3[b], w.h, w.d, true, na, nb),
          matched_cosine(w.w2[a], w.w2[b], w.d, w.h, false, na, nb)};
}

// dlib's Hungarian algorithm needs integer costs. A cosine in [-1, 1] scaled by 2^30 and rounded: |cost| <= 2^30,
// and the algorithm's labels and sums stay below a few times m * 2^30 (< 2^43 for m <= 4096), far from the int64
// limit; rounding moves each cost by at most 2^-31, so the matching found is optimal for the real cosines to within
// m * 2^-31 (2e-6 at m = 4096) of total similarity, below the float error of the cosines themselves.
constexpr double kCostScale = 1073741824.0;  // 2^30
static_assert(sizeof(long) == 8, "dlib cost type long must be 64-bit");

// ua, ub: the unit rows of a's and b's neurons `neurons` (unit_neurons).
NeuronReordering reorder_pair(const ExpertWeights& w, const std::vector<float>& ua /*[m,3d]*/,
                              const std::vector<float>& ub /*[m,3d]*/, const std::vector<int64_t>& neurons /*[m]*/,
                              int64_t a, int64_t b) {
  const int64_t m = static_cast<int64_t>(neurons.size()), D = 3 * w.d;
  std::vector<float> sim(m * m);  // [m,m] cosine of a's neuron i with b's neuron j
  cpu::gemm(cpu::Trans::N, cpu::Trans::T, m, m, D, 1.0f, ua.data(), D, ub.data(), D, 0.0f, sim.data(), m);
  dlib::matrix<long> cost(m, m);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < m; ++j) cost(i, j) = std::lround(static_cast<double>(sim[i * m + j]) * kCostScale);
  const std::vector<long> match = dlib::max_cost_assignment(cost);  // [m] row i -> column match[i]

  NeuronReordering r;
  r.a = a, r.b = b;
  r.neurons = neurons;
  r.permutation.assign(match.begin(), match.end());
  std::vector<int64_t> identity(m), matched_in_b(m);  // [m]
  for (int64_t i = 0; i < m; ++i) identity[i] = i, matched_in_b[i] = neurons[r.permutation[i]];
  r.kendall_tau = kendall_tau(r.permutation, identity);
  double matched = 0;
  for (int64_t i = 0; i < m; ++i) matched += sim[i * m + r.permutation[i]];
  r.mean_matched_similarity = matched / static_cast<double>(m);
  r.cosine_before = kind_cosines(w, a, b, neurons, neurons);
  r.cosine_after = kind_cosines(w, a, b, neurons, matched_in_b);
  return r;
}

void check_weights(const ExpertWeights& w) {
  MOELAB_ASSERT(w.E >= 1 && w.d >= 1 && w.h >= 1, "expert weights with an empty dimension");
  MOELAB_ASSERT(static_cast<int64_t>(w.w1.size()) == w.E && static_cast<int64_t>(w.w3.size()) == w.E &&
                    static_cast<int64_t>(w.w2.size()) == w.E,
                "expert weights: one pointer per expert and matrix expected");
}

// The points of a PCA: point i's coordinate c is rows[i][c * stride].
struct Points {
  const std::vector<const float*>& rows;
  int64_t stride;
  double at(int64_t i, int64_t c) const { return rows[i][c * stride]; }
};

using Mat = Eigen::MatrixXd;

// sum over [0, count) of accumulate(begin, end, acc) into a [size,size] matrix. The range is cut into at most 8
// parts, fixed by count alone, summed in parallel into one matrix each and then in part order, and each part is
// read in blocks of at most 1024: the sum does not depend on the thread count, memory stays at a block per part,
// and Eigen's products, called inside the parallel region, stay single-threaded (its own threading made the
// neuron PCA 6x slower on 2 threads than on 1 on a busy 2-core machine). work: multiply-adds per item, to skip threads
// for small sums.
template <typename F>
Mat blocked_sum(int64_t count, int64_t size, int64_t work, F&& accumulate) {
  constexpr int64_t kBlock = 1024, kParts = 8;
  const int64_t parts = std::clamp<int64_t>((count + kBlock - 1) / kBlock, 1, kParts);
  std::vector<Mat> partial(parts, Mat::Zero(size, size));  // [parts] each [size,size]
#pragma omp parallel for schedule(static) if (parts > 1 && count * work >= kParallelWork)
  for (int64_t p = 0; p < parts; ++p) {
    const int64_t begin = count * p / parts, end = count * (p + 1) / parts;
    for (int64_t b = begin; b < end; b += kBlock) accumulate(b, std::min(b + kBlock, end), partial[p]);
  }
  for (int64_t p = 1; p < parts; ++p) partial[0] += partial[p];
  return partial[0];
}

}  // namespace

const std::vector<const float*>& expert_matrices(const ExpertWeights& w, MatrixKind kind) {
  switch (kind) {
    case MatrixKind::Gate:
      return w.w1;
    case MatrixKind::Up:
      return w.w3;
    case MatrixKind::Down:
      return w.w2;
  }
  MOELAB_ASSERT(false, "unknown matrix kind");
  return w.w1;
}

std::vector<double> gram_matrix(const std::vector<const float*>& vectors, int64_t n) { return gram(vectors, n); }

std::vector<double> cosine_similarity_matrix(const std::vector<const float*>& vectors, int64_t n) {
  return gram_to_cosine(gram(vectors, n), static_cast<int64_t>(vectors.size()));
}

std::vector<double> cosine_similarity_matrix(const std::vector<const double*>& vectors, int64_t n) {
  return gram_to_cosine(gram(vectors, n), static_cast<int64_t>(vectors.size()));
}

std::array<std::vector<double>, kMatrixKinds> flattened_similarity(const ExpertWeights& w) {
  check_weights(w);
  std::array<std::vector<double>, kMatrixKinds> out;
  for (MatrixKind k : kAllMatrixKinds)
    out[static_cast<int>(k)] = cosine_similarity_matrix(expert_matrices(w, k), w.h * w.d);
  return out;
}

std::vector<double> neuron_averaged(const ExpertWeights& w, MatrixKind kind) {
  check_weights(w);
  const int64_t E = w.E, d = w.d, h = w.h;
  const auto& m = expert_matrices(w, kind);
  std::vector<double> out(E * d, 0.0);  // [E,d]
  for (int64_t e = 0; e < E; ++e) {
    double* o = out.data() + e * d;  // [d]
    if (kind == MatrixKind::Down) {
      for (int64_t c = 0; c < d; ++c) {
        const float* row = m[e] + c * h;  // [h] row c of w2
        double s = 0;
        for (int64_t i = 0; i < h; ++i) s += row[i];
        o[c] = s / static_cast<double>(h);
      }
    } else {
      for (int64_t i = 0; i < h; ++i)
        for (int64_t c = 0; c < d; ++c) o[c] += m[e][i * d + c];
      for (int64_t c = 0; c < d; ++c) o[c] /= static_cast<double>(h);
    }
  }
  return out;
}

std::array<std::vector<double>, kMatrixKinds> neuron_averaged_similarity(const ExpertWeights& w) {
  std::array<std::vector<double>, kMatrixKinds> out;
  for (MatrixKind k : kAllMatrixKinds) {
    const std::vector<double> avg = neuron_averaged(w, k);  // [E,d]
    std::vector<const double*> rows(w.E);                   // [E]
    for (int64_t e = 0; e < w.E; ++e) rows[e] = avg.data() + e * w.d;
    out[static_cast<int>(k)] = cosine_similarity_matrix(rows, w.d);
  }
  return out;
}

std::vector<double> router_similarity(const ExpertWeights& w) {
  MOELAB_ASSERT(w.router != nullptr, "router similarity of a hash router");
  std::vector<const float*> rows(w.E);  // [E]
  for (int64_t e = 0; e < w.E; ++e) rows[e] = w.router + e * w.d;
  return cosine_similarity_matrix(rows, w.d);
}

double kendall_tau(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  MOELAB_ASSERT(a.size() == b.size(), "kendall tau of rankings of different lengths");
  const int64_t n = static_cast<int64_t>(a.size());
  auto sign = [](int64_t x) { return static_cast<int64_t>(x > 0) - static_cast<int64_t>(x < 0); };
  // tau-b = sum sa*sb / sqrt(sum sa^2 * sum sb^2) over pairs, sa = sign(a_i - a_j): a pair tied in one ranking
  // counts in the other's denominator only. Integer sums: exact.
  int64_t s = 0, ta = 0, tb = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) {
      const int64_t sa = sign(a[i] - a[j]), sb = sign(b[i] - b[j]);
      s += sa * sb, ta += sa * sa, tb += sb * sb;
    }
  if (ta == 0 || tb == 0) return kNaN;
  return static_cast<double>(s) / std::sqrt(static_cast<double>(ta) * static_cast<double>(tb));
}

LinearFit linear_fit(const std::vector<double>& x, const std::vector<double>& y) {
  MOELAB_ASSERT(x.size() == y.size(), "linear fit of samples of different lengths");
  const int64_t n = static_cast<int64_t>(x.size());
  LinearFit f{kNaN, kNaN, kNaN};
  if (n == 0) return f;
  double mx = 0, my = 0;
  for (int64_t i = 0; i < n; ++i) mx += x[i], my += y[i];
  mx /= static_cast<double>(n), my /= static_cast<double>(n);
  double sxx = 0, syy = 0, sxy = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double dx = x[i] - mx, dy = y[i] - my;
    sxx += dx * dx, syy += dy * dy, sxy += dx * dy;
  }
  if (!(sxx > 0)) return f;
  f.slope = sxy / sxx;
  f.intercept = my - f.slope * mx;
  if (syy > 0) f.r2 = std::min(1.0, sxy * sxy / (sxx * syy));
  return f;
}

double linear_fit_r2(const std::vector<double>& x, const std::vector<double>& y) { return linear_fit(x, y).r2; }

std::vector<double> strict_lower_triangle(const std::vector<double>& m /*[E,E]*/, int64_t E) {
  MOELAB_ASSERT(static_cast<int64_t>(m.size()) == E * E, "strict lower triangle of a non-[E,E] matrix");
  std::vector<double> out;  // [E(E-1)/2]
  out.reserve(E * (E - 1) / 2);
  for (int64_t i = 1; i < E; ++i)
    for (int64_t j = 0; j < i; ++j) out.push_back(m[i * E + j]);
  return out;
}

std::vector<int64_t> evenly_spaced_neurons(int64_t h, int64_t m) {
  const int64_t n = std::min(h, m);
  std::vector<int64_t> out(n);  // [n]
  for (int64_t i = 0; i < n; ++i) out[i] = i * h / n;
  return out;
}

std::vector<NeuronReordering> reorder_neuron_pairs(const ExpertWeights& w,
                                                   const std::vector<std::pair<int64_t, int64_t>>& pairs,
                                                   int64_t max_neurons) {
  check_weights(w);
  if (max_neurons < 2)
    throw_error("static expert analysis: the neurons matched per expert pair must be at least 2, got ", max_neurons);
  std::vector<char> used(w.E, 0);  // [E] experts some pair names
  for (const auto& [a, b] : pairs) {
    if (a < 0 || a >= w.E || b < 0 || b >= w.E || a == b)
      throw_error("static expert analysis of layer ", w.layer, ": reorder pair (", a, ", ", b,
                  "): expected two different experts in [0, ", w.E, ")");
    used[a] = used[b] = 1;
  }
  const std::vector<int64_t> matched = evenly_spaced_neurons(w.h, max_neurons);  // [m]
  std::vector<std::vector<float>> neurons(w.E);  // [E] each [m,3d] for the experts in some pair, else empty
#pragma omp parallel for schedule(static) if (w.E * w.h * w.d >= kParallelWork)
  for (int64_t e = 0; e < w.E; ++e)
    if (used[e]) neurons[e] = unit_neurons(w, e, matched);
  const int64_t P = static_cast<int64_t>(pairs.size());
  std::vector<NeuronReordering> out(P);
  const int64_t m = static_cast<int64_t>(matched.size());
  const bool parallel = P * m * m * w.d >= kParallelWork;
  // Results are per pair, so a dynamic schedule only balances the load (matchings differ in cost).
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
  for (int64_t p = 0; p < P; ++p) {
    const auto [a, b] = pairs[p];
    out[p] = reorder_pair(w, neurons[a], neurons[b], matched, a, b);
  }
  return out;
}

NeuronReordering reorder_neurons(const ExpertWeights& w, int64_t a, int64_t b, int64_t max_neurons) {
  return reorder_neuron_pairs(w, {{a, b}}, max_neurons).front();
}

std::vector<std::pair<int64_t, int64_t>> default_reorder_pairs(int64_t E, int64_t max_pairs) {
  std::vector<std::pair<int64_t, int64_t>> out;
  if (E * (E - 1) / 2 <= max_pairs) {
    for (int64_t i = 0; i < E; ++i)
      for (int64_t j = i + 1; j < E; ++j) out.emplace_back(i, j);
  } else {
    for (int64_t j = 1; j < E; ++j) out.emplace_back(0, j);
  }
  return out;
}

PcaFit pca_fit(const std::vector<const float*>& rows, int64_t n, int64_t stride, int64_t k, bool standardize) {
  const int64_t m = static_cast<int64_t>(rows.size());
  MOELAB_ASSERT(m >= 1 && n >= 1 && k >= 1 && stride >= 1, "PCA of an empty point set");
  const Points pts{rows, stride};
  PcaFit f;
  f.n_features = n;
  f.n_components = std::min({k, m, n});
  f.standardized = standardize;

  // Per-coordinate mean, then the sum of squared deviations (two passes: no cancellation).
  f.mean.assign(n, 0.0);
  std::vector<double> ssd(n, 0.0);  // [n]
  for (int64_t i = 0; i < m; ++i)
    for (int64_t c = 0; c < n; ++c) f.mean[c] += pts.at(i, c);
  for (int64_t c = 0; c < n; ++c) f.mean[c] /= static_cast<double>(m);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t c = 0; c < n; ++c) {
      const double dv = pts.at(i, c) - f.mean[c];
      ssd[c] += dv * dv;
    }
  f.inv_std.assign(n, 1.0);
  double total = 0;  // total variance (times m - 1) of the points PCA sees: the trace of the Gram/covariance
  for (int64_t c = 0; c < n; ++c) {
    if (standardize) f.inv_std[c] = ssd[c] > 0 && m > 1 ? std::sqrt((m - 1) / ssd[c]) : 0.0;
    total += ssd[c] * f.inv_std[c] * f.inv_std[c];
  }
  auto z = [&](int64_t i, int64_t c) { return (pts.at(i, c) - f.mean[c]) * f.inv_std[c]; };

  const int64_t K = f.n_components;
  f.components.assign(K * n, 0.0);
  std::vector<double> lambda(K, 0.0);  // [K] largest eigenvalues, descending
  if (m <= n) {
    // Gram route: G = Z Z^T [m,m], summed over the coordinates; an eigenvector u gives the axis Z^T u / sqrt(lambda).
    const Mat G = blocked_sum(n, m, m * m, [&](int64_t c0, int64_t c1, Mat& acc) {
      Mat B(m, c1 - c0);  // [m,c1-c0] standardized coordinates c0..c1
      for (int64_t i = 0; i < m; ++i)
        for (int64_t c = c0; c < c1; ++c) B(i, c - c0) = z(i, c);
      acc.noalias() += B * B.transpose();
    });
    Eigen::SelfAdjointEigenSolver<Mat> es(G);
    for (int64_t j = 0; j < K; ++j) {
      const int64_t col = m - 1 - j;  // eigenvalues ascend
      lambda[j] = std::max(0.0, es.eigenvalues()(col));
      if (!(lambda[j] > total * 1e-12)) continue;  // no variance along it: the axis stays 0
      const double inv = 1.0 / std::sqrt(lambda[j]);
      double* v = f.components.data() + j * n;  // [n]
      for (int64_t i = 0; i < m; ++i) {
        const double u = es.eigenvectors()(i, col) * inv;
        for (int64_t c = 0; c < n; ++c) v[c] += z(i, c) * u;
      }
    }
  } else {
    // Covariance route: C = Z^T Z [n,n]; its eigenvectors are the axes.
    const Mat C = blocked_sum(m, n, n * n, [&](int64_t i0, int64_t i1, Mat& acc) {
      Mat B(i1 - i0, n);  // [i1-i0,n] standardized points i0..i1
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t c = 0; c < n; ++c) B(i - i0, c) = z(i, c);
      acc.noalias() += B.transpose() * B;
    });
    Eigen::SelfAdjointEigenSolver<Mat> es(C);
    for (int64_t j = 0; j < K; ++j) {
      const int64_t col = n - 1 - j;
      lambda[j] = std::max(0.0, es.eigenvalues()(col));
      if (!(lambda[j] > total * 1e-12)) continue;
      for (int64_t c = 0; c < n; ++c) f.components[j * n + c] = es.eigenvectors()(c, col);
    }
  }
  // Eigenvectors have no sign of their own: fix it so the same weights always give the same picture.
  for (int64_t j = 0; j < K; ++j) {
    double* v = f.components.data() + j * n;  // [n]
    int64_t arg = 0;
    for (int64_t c = 1; c < n; ++c)
      if (std::abs(v[c]) > std::abs(v[arg])) arg = c;
    if (v[arg] < 0)
      for (int64_t c = 0; c < n; ++c) v[c] = -v[c];
  }
  f.explained_variance_ratio.resize(K);
  for (int64_t j = 0; j < K; ++j) f.explained_variance_ratio[j] = total > 0 ? lambda[j] / total : 0.0;
  return f;
}

std::vector<double> pca_project(const PcaFit& fit, const std::vector<const float*>& rows, int64_t stride) {
  const int64_t m = static_cast<int64_t>(rows.size()), n = fit.n_features, K = fit.n_components;
  const Points pts{rows, stride};
  std::vector<double> out(m * K, 0.0);  // [m,K]
#pragma omp parallel for schedule(static) if (m * n * K >= kParallelWork)
  for (int64_t i = 0; i < m; ++i)
    for (int64_t c = 0; c < n; ++c) {
      const double zc = (pts.at(i, c) - fit.mean[c]) * fit.inv_std[c];
      for (int64_t j = 0; j < K; ++j) out[i * K + j] += zc * fit.components[j * n + c];
    }
  return out;
}

ExpertPca pca_experts(const ExpertWeights& w, MatrixKind kind, bool standardize) {
  check_weights(w);
  const auto& rows = expert_matrices(w, kind);
  // The flattening order does not matter: a PCA is unchanged by permuting the coordinates of every point alike.
  const PcaFit fit = pca_fit(rows, w.h * w.d, 1, 2, standardize);
  return {pca_project(fit, rows, 1), fit.explained_variance_ratio};
}

NeuronPca pca_neurons(const ExpertWeights& w, MatrixKind kind, int64_t max_neurons_per_expert, bool standardize) {
  check_weights(w);
  MOELAB_ASSERT(max_neurons_per_expert >= 1, "neuron PCA keeping no neuron");
  const int64_t E = w.E, d = w.d, h = w.h;
  const auto& m = expert_matrices(w, kind);
  // Neuron i of expert e: row i of w1/w3 (stride 1) or column i of w2 (stride h).
  const bool columns = kind == MatrixKind::Down;
  const int64_t stride = columns ? h : 1;
  auto neuron = [&](int64_t e, int64_t i) { return columns ? m[e] + i : m[e] + i * d; };
  std::vector<const float*> all(E * h);  // [E*h]
  for (int64_t e = 0; e < E; ++e)
    for (int64_t i = 0; i < h; ++i) all[e * h + i] = neuron(e, i);
  const PcaFit fit = pca_fit(all, d, stride, 2, standardize);

  NeuronPca out;
  const int64_t keep = std::min(h, max_neurons_per_expert);
  std::vector<const float*> kept;  // [E*keep]
  for (int64_t e = 0; e < E; ++e)
    for (int64_t j = 0; j < keep; ++j) {
      const int64_t i = j * h / keep;  // evenly spaced, neuron 0 first
      kept.push_back(neuron(e, i));
      out.expert.push_back(e);
      out.neuron.push_back(i);
    }
  out.coords = pca_project(fit, kept, stride);
  out.explained_variance_ratio = fit.explained_variance_ratio;
  return out;
}

StaticLayerAnalysis analyze_static(const ExpertWeights& w, const StaticOptions& options) {
  check_weights(w);
  if (options.max_neurons_per_expert < 1)
    throw_error("static expert analysis: max neurons per expert for the neuron PCA must be >= 1, got ",
                options.max_neurons_per_expert);
  StaticLayerAnalysis a;
  a.layer = w.layer, a.E = w.E, a.d = w.d, a.h = w.h;
  a.flattened = flattened_similarity(w);
  a.neuron_averaged = neuron_averaged_similarity(w);
  a.reordering = reorder_neuron_pairs(w, options.reorder_pairs ? *options.reorder_pairs : default_reorder_pairs(w.E),
                                      options.max_matched_neurons);
  if (w.router) {
    a.router = router_similarity(w);
    const std::vector<double> y = strict_lower_triangle(a.router, w.E);  // [E(E-1)/2]
    std::array<LinearFit, kMatrixKinds> fits;
    for (int k = 0; k < kMatrixKinds; ++k) fits[k] = linear_fit(strict_lower_triangle(a.neuron_averaged[k], w.E), y);
    a.router_fit = fits;
  }
  for (MatrixKind k : kAllMatrixKinds) {
    a.pca_experts[static_cast<int>(k)] = pca_experts(w, k, options.pca_standardize);
    a.pca_neurons[static_cast<int>(k)] = pca_neurons(w, k, options.max_neurons_per_expert, options.pca_standardize);
  }
  return a;
}

namespace {

nlohmann::json rows_json(const std::vector<double>& m, int64_t rows, int64_t cols) {
  MOELAB_ASSERT(static_cast<int64_t>(m.size()) == rows * cols, "matrix of another shape");
  nlohmann::json out = nlohmann::json::array();
  for (int64_t r = 0; r < rows; ++r)
    out.push_back(std::vector<double>(m.begin() + r * cols, m.begin() + (r + 1) * cols));
  return out;
}

template <typename F>
nlohmann::json per_kind(F&& f) {
  nlohmann::json out = nlohmann::json::object();
  for (int k = 0; k < kMatrixKinds; ++k) out[kMatrixKindNames[k]] = f(k);
  return out;
}

}  // namespace

nlohmann::json to_json(const StaticLayerAnalysis& a) {
  const int64_t E = a.E;
  nlohmann::json reordering = nlohmann::json::array();
  for (const NeuronReordering& r : a.reordering)
    reordering.push_back({{"a", r.a},
                          {"b", r.b},
                          {"kendall_tau", r.kendall_tau},
                          {"mean_matched_similarity", r.mean_matched_similarity},
                          {"cosine_before", per_kind([&](int k) { return r.cosine_before[k]; })},
                          {"cosine_after", per_kind([&](int k) { return r.cosine_after[k]; })},
                          {"neurons", r.neurons},
                          {"permutation", r.permutation}});
  nlohmann::json router = nullptr, router_fit = nullptr;
  if (!a.router.empty()) router = rows_json(a.router, E, E);
  if (a.router_fit)
    router_fit = per_kind([&](int k) {
      const LinearFit& f = (*a.router_fit)[k];
      return nlohmann::json{{"slope", f.slope}, {"intercept", f.intercept}, {"r2", f.r2}};
    });
  return {{"layer", a.layer},
          {"experts", E},
          {"d_model", a.d},
          {"expert_hidden", a.h},
          {"flattened_similarity", per_kind([&](int k) { return rows_json(a.flattened[k], E, E); })},
          {"neuron_averaged_similarity", per_kind([&](int k) { return rows_json(a.neuron_averaged[k], E, E); })},
          {"reordering", reordering},
          {"router_similarity", router},
          {"router_fit", router_fit},
          {"pca_experts", per_kind([&](int k) {
             const ExpertPca& p = a.pca_experts[k];
             const int64_t K = static_cast<int64_t>(p.explained_variance_ratio.size());
             return nlohmann::json{{"coords", rows_json(p.coords, E, K)},
                                   {"explained_variance_ratio", p.explained_variance_ratio}};
           })},
          {"pca_neurons", per_kind([&](int k) {
             const NeuronPca& p = a.pca_neurons[k];
             const int64_t K = static_cast<int64_t>(p.explained_variance_ratio.size());
             return nlohmann::json{{"coords", rows_json(p.coords, static_cast<int64_t>(p.expert.size()), K)},
                                   {"expert", p.expert},
                                   {"neuron", p.neuron},
                                   {"explained_variance_ratio", p.explained_variance_ratio}};
           })}};
}

}  // namespace moelab::analysis
