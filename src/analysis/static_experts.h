// Static expert analysis (paper 3, "A Closer Look into Mixture-of-Experts in Large Language Models", as settled by
// the paper's public notebook static_analysis.ipynb): what one MoE layer's expert weights say without
// running the model.
//   - flattened similarity: cosine between experts of each whole weight matrix (gate w1, up w3, down w2);
//   - neuron-averaged similarity: each matrix averaged over its intermediate (h) axis to a d-vector, then cosine;
//     unlike the flattened cosine it does not depend on the order of an expert's neurons;
//   - neuron reordering: the maximum-weight matching of two experts' neurons, the flattened cosine once b's neurons
//     are put in a's order, and Kendall tau-b of the matching against the identity (1: the experts' neurons are
//     already aligned, as in experts upcycled from one dense FFN);
//   - router rows against experts: cosine between router rows [E,E] regressed on the neuron-averaged expert
//     similarity over the strict lower triangles (r^2 per matrix kind);
//   - PCA of experts (E points, one per flattened matrix) and of neurons (E*h points).
// Where we differ from the notebook, on purpose: a neuron is matched as one unit (its w1 row, w3 row and w2 column
// concatenated), so one permutation serves all three matrices and the reordered expert computes the same function;
// the notebook matches each matrix separately. r^2 is not rounded to 2 decimals before averaging over layers.
// Sums run in double in a fixed order, split across threads only where the split does not depend on the thread
// count: the same weights give the same results on the same machine.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <utility>
#include <vector>

#include "analysis/expert_weights.h"

namespace moelab::analysis {

// The three weight matrices of an expert, in the order of every [3] array below.
enum class MatrixKind { Gate = 0, Up = 1, Down = 2 };  // w1 [h,d], w3 [h,d], w2 [d,h]
inline constexpr int kMatrixKinds = 3;
inline constexpr std::array<const char*, kMatrixKinds> kMatrixKindNames = {"gate", "up", "down"};
inline constexpr std::array<MatrixKind, kMatrixKinds> kAllMatrixKinds = {MatrixKind::Gate, MatrixKind::Up,
                                                                         MatrixKind::Down};

// The E matrices of one kind (w.w1, w.w3 or w.w2); each holds h*d floats.
const std::vector<const float*>& expert_matrices(const ExpertWeights& w, MatrixKind kind);

// Dot products between every two of the vectors (each n values), summed in double: [E,E].
std::vector<double> gram_matrix(const std::vector<const float*>& vectors, int64_t n);

// Cosine similarity between every two of the vectors (each n values): [E,E], symmetric. A zero vector has cosine 0
// with every vector, itself included (no direction to compare).
std::vector<double> cosine_similarity_matrix(const std::vector<const float*>& vectors, int64_t n);
std::vector<double> cosine_similarity_matrix(const std::vector<const double*>& vectors, int64_t n);

// [3][E,E]: cosine between the experts' flattened gate, up and down matrices.
std::array<std::vector<double>, kMatrixKinds> flattened_similarity(const ExpertWeights& w);

// [E,d]: each expert's matrix of one kind averaged over its h neurons (the mean row of w1/w3, the mean column of w2).
std::vector<double> neuron_averaged(const ExpertWeights& w, MatrixKind kind);

// [3][E,E]: cosine between the neuron-averaged d-vectors of each kind.
std::array<std::vector<double>, kMatrixKinds> neuron_averaged_similarity(const ExpertWeights& w);

// [E,E]: cosine between router rows. Requires w.router (not a hash router).
std::vector<double> router_similarity(const ExpertWeights& w);

// Kendall tau-b between two rankings of the same items (ties corrected; equals tau-a when neither has ties, as for
// a permutation). O(n^2). NaN when either ranking is constant or n < 2 (undefined).
double kendall_tau(const std::vector<int64_t>& a, const std::vector<int64_t>& b);

// Least-squares fit y = slope * x + intercept and its r^2 (the squared Pearson correlation), as scipy's linregress.
// Undefined parts are NaN: the slope and intercept when x is constant (or there are no points), r^2 also when y is
// constant (0/0: nothing to explain).
struct LinearFit {
  double slope = 0;
  double intercept = 0;
  double r2 = 0;
};
LinearFit linear_fit(const std::vector<double>& x, const std::vector<double>& y);
double linear_fit_r2(const std::vector<double>& x, const std::vector<double>& y);

// The strict lower triangle of a [E,E] matrix, row by row (m[1,0], m[2,0], m[2,1], ...): E(E-1)/2 values.
std::vector<double> strict_lower_triangle(const std::vector<double>& m /*[E,E]*/, int64_t E);

// The most neurons of an expert pair matched by default: a 2048 x 2048 assignment takes about 10 s of one core.
constexpr int64_t kMaxMatchedNeurons = 2048;

// The maximum-weight matching between expert a's and expert b's neurons (neuron i = (w1 row i, w3 row i, w2
// column i), matched by the cosine of the concatenated 3d-vectors). An expert of more neurons than a cap (experts
// of 14336 neurons make a 14336 x 14336 assignment problem, hours per pair) is matched on a sample: m neurons
// evenly spaced, the same positions in both experts, so that experts whose neurons share one order still match
// position to position.
struct NeuronReordering {
  int64_t a = 0, b = 0;
  std::vector<int64_t> neurons;        // [m] the neurons matched, ascending (all h when no cap applies)
  std::vector<int64_t> permutation;    // [m] position in `neurons` of b's neuron matched to a's neuron neurons[i]
  double kendall_tau = 0;              // tau-b of permutation against the identity
  double mean_matched_similarity = 0;  // mean over i of the neuron cosine (i, permutation[i])
  std::array<double, kMatrixKinds> cosine_before;  // flattened cosine of a's and b's matched neurons, per kind
  std::array<double, kMatrixKinds> cosine_after;   // the same with b's neurons in a's order
};
// max_neurons: the cap (>= 2); every neuron when h <= max_neurons.
NeuronReordering reorder_neurons(const ExpertWeights& w, int64_t a, int64_t b,
                                 int64_t max_neurons = kMaxMatchedNeurons);

// Every pair (a, b) in pairs, in parallel (OpenMP, one pair per thread); results in the order of pairs. Throws
// moelab::Error when a pair names an expert outside [0, E) or an expert twice.
std::vector<NeuronReordering> reorder_neuron_pairs(const ExpertWeights& w,
                                                   const std::vector<std::pair<int64_t, int64_t>>& pairs,
                                                   int64_t max_neurons = kMaxMatchedNeurons);

// m of h neurons evenly spaced: floor(i * h / m) for i < m; all h when h <= m.
std::vector<int64_t> evenly_spaced_neurons(int64_t h, int64_t m);

// The pairs reordered by default: every pair (i < j) when there are at most max_pairs of them, else every expert
// against expert 0. One 704x704 matching (with its neuron similarity product) costs about 20 ms of one core, so the 28
// pairs of the default model (E 8) are well within budget, while DeepSeekMoE's 64 experts (2016 pairs of 1408 neurons)
// fall back to 63 pairs.
std::vector<std::pair<int64_t, int64_t>> default_reorder_pairs(int64_t E, int64_t max_pairs = 64);

// A principal component analysis of m points with n coordinates. Point i is rows[i][c * stride] for c in [0, n),
// so matrix rows (stride 1) and matrix columns (stride = row length) are both points without a copy. The
// eigenproblem is the smaller of the m x m Gram matrix and the n x n covariance, and the points are read in blocks,
// never copied whole.
struct PcaFit {
  int64_t n_features = 0;
  int64_t n_components = 0;  // min(k, m, n)
  bool standardized = false;
  std::vector<double> mean;        // [n] per-coordinate mean
  std::vector<double> inv_std;     // [n] 1 / sample std (ddof 1) when standardized, else 1; 0 for a constant one
  std::vector<double> components;  // [n_components, n] unit principal axes of the (standardized) centred points;
                                   // sign: each axis's largest-|loading| entry (first on ties) is positive
  std::vector<double> explained_variance_ratio;  // [n_components] eigenvalue / total variance
};
// standardize: divide each coordinate by its sample std first (as the notebook's use_normalize = True), so that
// coordinates with large weights do not dominate.
PcaFit pca_fit(const std::vector<const float*>& rows, int64_t n, int64_t stride, int64_t k, bool standardize);
// [m, n_components]: the coordinates of points given the same way as to pca_fit.
std::vector<double> pca_project(const PcaFit& fit, const std::vector<const float*>& rows, int64_t stride);

struct ExpertPca {
  std::vector<double> coords;                    // [E, n_components]
  std::vector<double> explained_variance_ratio;  // [n_components]
};
// The E experts' flattened matrices of one kind as E points (2 components).
ExpertPca pca_experts(const ExpertWeights& w, MatrixKind kind, bool standardize);

struct NeuronPca {
  std::vector<double> coords;                    // [P, n_components] the kept neurons' coordinates
  std::vector<int64_t> expert;                   // [P] expert of each kept neuron
  std::vector<int64_t> neuron;                   // [P] its index in the expert
  std::vector<double> explained_variance_ratio;  // [n_components]
};
// All E*h neurons of one kind (rows of w1 or w3, columns of w2: d-vectors) fit the PCA (2 components); the
// coordinates are given for at most max_neurons_per_expert evenly spaced neurons of each expert (>= 1).
NeuronPca pca_neurons(const ExpertWeights& w, MatrixKind kind, int64_t max_neurons_per_expert, bool standardize);

struct StaticOptions {
  // Expert pairs to reorder; unset: default_reorder_pairs(E). An empty list skips the reordering.
  std::optional<std::vector<std::pair<int64_t, int64_t>>> reorder_pairs;
  int64_t max_neurons_per_expert = 128;              // neuron PCA points kept per expert
  int64_t max_matched_neurons = kMaxMatchedNeurons;  // the neuron matching's cap (NeuronReordering)
  bool pca_standardize = true;                       // as the notebook
};

struct StaticLayerAnalysis {
  int64_t layer = 0, E = 0, d = 0, h = 0;
  std::array<std::vector<double>, kMatrixKinds> flattened;        // [3][E,E]
  std::array<std::vector<double>, kMatrixKinds> neuron_averaged;  // [3][E,E]
  std::vector<NeuronReordering> reordering;                       // one per reordered pair
  std::vector<double> router;                                     // [E,E] router-row cosine; empty for hash routers
  std::optional<std::array<LinearFit, kMatrixKinds>> router_fit;  // router ~ neuron-averaged, per kind
  std::array<ExpertPca, kMatrixKinds> pca_experts;
  std::array<NeuronPca, kMatrixKinds> pca_neurons;
};

// Every analysis above for one layer. Throws moelab::Error for a bad option (a pair out of range,
// max_neurons_per_expert < 1).
StaticLayerAnalysis analyze_static(const ExpertWeights& w, const StaticOptions& options = {});

// One JSON object; [E,E] matrices as arrays of rows, per-kind results as objects keyed "gate", "up", "down", NaN as
// null:
//   "layer", "experts", "d_model", "expert_hidden"
//   "flattened_similarity"        {kind: [E][E]}
//   "neuron_averaged_similarity"  {kind: [E][E]}
//   "reordering"                  [{"a", "b", "kendall_tau", "mean_matched_similarity", "cosine_before": {kind},
//                                   "cosine_after": {kind}, "permutation": [h]}]
//   "router_similarity"           [E][E] or null
//   "router_fit"                  {kind: {"slope", "intercept", "r2"}} or null
//   "pca_experts"                 {kind: {"coords": [E][2], "explained_variance_ratio": [2]}}
//   "pca_neurons"                 {kind: {"coords": [P][2], "expert": [P], "neuron": [P],
//                                         "explained_variance_ratio": [2]}}
nlohmann::json to_json(const StaticLayerAnalysis& a);

}  // namespace moelab::analysis
