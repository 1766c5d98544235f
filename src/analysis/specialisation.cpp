#include "analysis/specialisation.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <utility>

#include "core/error.h"
#include "core/rng.h"

namespace moelab::analysis {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void check_sizes(int64_t N, int64_t K, int64_t E, int64_t n_labels) {
  if (N < 0 || K < 0) throw_error("specialisation: expected N >= 0 tokens and K >= 0 slots, got N=", N, " K=", K);
  if (E < 1 || E > 32767) throw_error("specialisation: expected 1 to 32767 experts, got ", E);
  if (n_labels < 1 || n_labels >= kNoLabel)
    throw_error("specialisation: expected 1 to ", kNoLabel - 1, " label classes, got ", n_labels);
}

// The routed slots grouped by token: what every permutation recounts. Only the labelled tokens (M of them), or
// every token (M = N, unlabelled ones kept in place) when labels move in blocks.
struct LabelledSlots {
  std::vector<int64_t> offsets;  // [M+1] token i's experts are experts[offsets[i], offsets[i+1])
  std::vector<int16_t> experts;  // [slots]
  std::vector<uint8_t> labels;   // [M]
};

LabelledSlots labelled_slots(const int16_t* experts /*[N,K]*/, int64_t N, int64_t K, int64_t E,
                             const uint8_t* labels /*[N]*/, int64_t n_labels, bool keep_unlabelled = false) {
  check_sizes(N, K, E, n_labels);
  LabelledSlots s;
  s.offsets.push_back(0);
  for (int64_t t = 0; t < N; ++t) {
    for (int64_t k = 0; k < K; ++k) {
      const int16_t e = experts[t * K + k];
      if (e < -1 || e >= E)
        throw_error("specialisation: expert id ", e, " at token ", t, " slot ", k, ": expected -1 (none) or 0 to ",
                    E - 1);
    }
    if (labels[t] >= n_labels && !keep_unlabelled) continue;
    for (int64_t k = 0; k < K; ++k)
      if (experts[t * K + k] >= 0) s.experts.push_back(experts[t * K + k]);
    s.offsets.push_back(static_cast<int64_t>(s.experts.size()));
    s.labels.push_back(labels[t]);
  }
  return s;
}

// counts [E,C] of the slots with token i labelled labels[i].
void count_slots(const LabelledSlots& s, const uint8_t* labels /*[M]*/, int64_t C, std::vector<int64_t>& counts) {
  std::fill(counts.begin(), counts.end(), 0);
  const int64_t M = static_cast<int64_t>(s.labels.size());
  for (int64_t i = 0; i < M; ++i)
    if (labels[i] < C)
      for (int64_t j = s.offsets[i]; j < s.offsets[i + 1]; ++j) ++counts[s.experts[j] * C + labels[i]];
}

double nmi_of(const std::vector<int64_t>& counts /*[E,C]*/, int64_t E, int64_t C) {
  std::vector<double> row(E, 0.0), col(C, 0.0);  // [E], [C] marginal counts
  double n = 0;
  for (int64_t e = 0; e < E; ++e)
    for (int64_t c = 0; c < C; ++c) {
      const double v = static_cast<double>(counts[e * C + c]);
      row[e] += v, col[c] += v, n += v;
    }
  if (n == 0) return 0.0;
  auto entropy = [n](const std::vector<double>& marginal) {
    double h = 0;
    for (double v : marginal)
      if (v > 0) h -= v / n * std::log(v / n);
    return h;
  };
  const double h_sum = entropy(row) + entropy(col);
  if (h_sum <= 0) return 0.0;
  double mi = 0;
  for (int64_t e = 0; e < E; ++e)
    for (int64_t c = 0; c < C; ++c) {
      const double v = static_cast<double>(counts[e * C + c]);
      if (v > 0) mi += v / n * std::log(v * n / (row[e] * col[c]));
    }
  return std::max(mi, 0.0) / (h_sum / 2);  // a slightly negative mi is rounding
}

double purity_of(const std::vector<int64_t>& counts /*[E,C]*/, int64_t E, int64_t C) {
  int64_t top = 0, n = 0;
  for (int64_t e = 0; e < E; ++e) {
    int64_t best = 0;
    for (int64_t c = 0; c < C; ++c) best = std::max(best, counts[e * C + c]), n += counts[e * C + c];
    top += best;
  }
  return n ? static_cast<double>(top) / static_cast<double>(n) : 0.0;
}

nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

nlohmann::json to_json(const PermutationScore& s) {
  return {{"observed", number_or_null(s.observed)},
          {"baseline_mean", number_or_null(s.baseline_mean)},
          {"baseline_std", number_or_null(s.baseline_std)},
          {"z", number_or_null(s.z)},
          {"p_value", number_or_null(s.p_value)}};
}

}  // namespace

PermutationScore score_against(double observed, const std::vector<double>& baseline /*[P]*/) {
  PermutationScore s;
  s.observed = observed;
  const int64_t P = static_cast<int64_t>(baseline.size());
  s.baseline_mean = s.baseline_std = s.z = kNaN;
  int64_t at_least = 0;
  for (double v : baseline)
    if (v >= observed - 1e-12 * std::abs(observed)) ++at_least;
  s.p_value = static_cast<double>(1 + at_least) / static_cast<double>(1 + P);
  if (P == 0) return s;
  double sum = 0;
  for (double v : baseline) sum += v;
  s.baseline_mean = sum / static_cast<double>(P);
  if (P < 2) return s;
  double ss = 0;
  for (double v : baseline) ss += (v - s.baseline_mean) * (v - s.baseline_mean);
  s.baseline_std = std::sqrt(ss / static_cast<double>(P - 1));
  // A spread at the level of rounding (every permutation scoring the same, up to the last bits) is no spread: z
  // would be an artefact of the order of additions (1e14 was seen for purity), not a measure of anything.
  const double scale = std::max(std::abs(s.baseline_mean), std::abs(observed));
  if (s.baseline_std > 1e-9 * scale) s.z = (observed - s.baseline_mean) / s.baseline_std;
  return s;
}

Contingency contingency(const int16_t* experts /*[N,K]*/, int64_t N, int64_t K, int64_t E,
                        const uint8_t* labels /*[N]*/, int64_t n_labels) {
  const LabelledSlots s = labelled_slots(experts, N, K, E, labels, n_labels);
  Contingency table;
  table.n_experts = E;
  table.n_labels = n_labels;
  table.counts.assign(E * n_labels, 0);
  count_slots(s, s.labels.data(), n_labels, table.counts);
  table.total = static_cast<int64_t>(s.experts.size());
  return table;
}

double normalized_mutual_information(const Contingency& table) {
  MOELAB_ASSERT(static_cast<int64_t>(table.counts.size()) == table.n_experts * table.n_labels,
                "contingency counts are not [E,C]");
  return nmi_of(table.counts, table.n_experts, table.n_labels);
}

double purity(const Contingency& table) {
  MOELAB_ASSERT(static_cast<int64_t>(table.counts.size()) == table.n_experts * table.n_labels,
                "contingency counts are not [E,C]");
  return purity_of(table.counts, table.n_experts, table.n_labels);
}

SpecialisationResult specialisation(const int16_t* experts /*[N,K]*/, int64_t N, int64_t K, int64_t E,
                                    const uint8_t* labels /*[N]*/, int64_t n_labels, int64_t permutations,
                                    uint64_t seed, int64_t block) {
  if (permutations < 0) throw_error("specialisation: expected permutations >= 0, got ", permutations);
  if (block < 1) throw_error("specialisation: expected a permutation block of at least 1 token, got ", block);
  const LabelledSlots s = labelled_slots(experts, N, K, E, labels, n_labels, block > 1);
  const int64_t M = static_cast<int64_t>(s.labels.size()), C = n_labels;
  const int64_t blocks = block > 1 ? M / block : 0;  // whole blocks that move; a shorter tail stays

  SpecialisationResult r;
  r.table.n_experts = E;
  r.table.n_labels = C;
  r.table.counts.assign(E * C, 0);
  count_slots(s, s.labels.data(), C, r.table.counts);
  r.table.total = std::accumulate(r.table.counts.begin(), r.table.counts.end(), int64_t{0});  // labelled slots
  r.labelled_tokens =
      static_cast<int64_t>(std::count_if(s.labels.begin(), s.labels.end(), [C](uint8_t l) { return l < C; }));
  r.permutations = permutations;
  r.seed = seed;
  r.block = block;

  std::vector<double> nmi(permutations), pur(permutations);  // [P] scores of each permutation
#pragma omp parallel
  {
    std::vector<uint8_t> shuffled(M);    // [M]
    std::vector<int64_t> order(blocks);  // [blocks] the block whose labels block b takes
    std::vector<int64_t> counts(E * C);  // [E,C]
#pragma omp for schedule(static)
    for (int64_t p = 0; p < permutations; ++p) {
      std::copy(s.labels.begin(), s.labels.end(), shuffled.begin());
      Rng rng(seed, static_cast<uint64_t>(p));
      if (block == 1) {
        for (int64_t i = M - 1; i > 0; --i) std::swap(shuffled[i], shuffled[rng.below(static_cast<uint64_t>(i + 1))]);
      } else {
        for (int64_t b = 0; b < blocks; ++b) order[b] = b;
        for (int64_t b = blocks - 1; b > 0; --b) std::swap(order[b], order[rng.below(static_cast<uint64_t>(b + 1))]);
        for (int64_t b = 0; b < blocks; ++b)
          std::copy_n(s.labels.begin() + order[b] * block, block, shuffled.begin() + b * block);
      }
      count_slots(s, shuffled.data(), C, counts);
      nmi[p] = nmi_of(counts, E, C);
      pur[p] = purity_of(counts, E, C);
    }
  }
  r.nmi = score_against(nmi_of(r.table.counts, E, C), nmi);
  r.purity = score_against(purity_of(r.table.counts, E, C), pur);
  return r;
}

nlohmann::json to_json(const SpecialisationResult& result) {
  const Contingency& t = result.table;
  nlohmann::json counts = nlohmann::json::array();
  for (int64_t e = 0; e < t.n_experts; ++e)
    counts.push_back(std::vector<int64_t>(t.counts.begin() + e * t.n_labels, t.counts.begin() + (e + 1) * t.n_labels));
  return {{"experts", t.n_experts},
          {"labels", t.n_labels},
          {"counts", std::move(counts)},
          {"slots", t.total},
          {"labelled_tokens", result.labelled_tokens},
          {"permutations", result.permutations},
          {"seed", result.seed},
          {"block", result.block},
          {"nmi", to_json(result.nmi)},
          {"purity", to_json(result.purity)}};
}

}  // namespace moelab::analysis
