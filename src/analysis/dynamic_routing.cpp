#include "analysis/dynamic_routing.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "core/error.h"

namespace moelab::analysis {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// 1-based ranks of v, tied values sharing the mean of their positions.
std::vector<double> average_ranks(const std::vector<double>& v /*[M]*/) {
  const int64_t M = static_cast<int64_t>(v.size());
  std::vector<int64_t> order(M);  // [M] indices by ascending value
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return v[a] < v[b]; });
  std::vector<double> rank(M);  // [M]
  for (int64_t i = 0; i < M;) {
    int64_t j = i;
    while (j + 1 < M && v[order[j + 1]] == v[order[i]]) ++j;
    const double r = 0.5 * static_cast<double>(i + j) + 1.0;
    for (int64_t k = i; k <= j; ++k) rank[order[k]] = r;
    i = j + 1;
  }
  return rank;
}

double pearson(const std::vector<double>& a /*[M]*/, const std::vector<double>& b /*[M]*/) {
  const int64_t M = static_cast<int64_t>(a.size());
  if (M < 2) return kNaN;
  double ma = 0, mb = 0;
  for (int64_t i = 0; i < M; ++i) ma += a[i], mb += b[i];
  ma /= static_cast<double>(M), mb /= static_cast<double>(M);
  double sab = 0, saa = 0, sbb = 0;
  for (int64_t i = 0; i < M; ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  if (saa <= 0 || sbb <= 0) return kNaN;
  return sab / std::sqrt(saa * sbb);
}

nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

// The "routing" array of one metrics record as (layer, mean experts per token) pairs.
void read_routing(const nlohmann::json& routing, const std::string& where, std::vector<int64_t>& layers /*[L]*/,
                  std::vector<double>& means /*[L]*/) {
  layers.clear(), means.clear();
  for (const auto& layer : routing) {
    if (!layer.is_object() || !layer.contains("layer") || !layer["layer"].is_number_integer() ||
        !layer.contains("mean_experts_per_token") || !layer["mean_experts_per_token"].is_number())
      throw_error(where,
                  ": expected every \"routing\" entry to be an object with an integer \"layer\" and a number "
                  "\"mean_experts_per_token\"");
    layers.push_back(layer["layer"].get<int64_t>());
    means.push_back(layer["mean_experts_per_token"].get<double>());
  }
}

}  // namespace

ExpertsPerToken experts_per_token(const uint8_t* n_selected /*[N]*/, int64_t N, int64_t E) {
  if (N < 0 || E < 1) throw_error("experts per token: expected N >= 0 tokens and E >= 1 experts, got N=", N, " E=", E);
  ExpertsPerToken r;
  r.tokens = N;
  r.histogram.assign(E + 1, 0);
  int64_t slots = 0;
  for (int64_t t = 0; t < N; ++t) {
    if (n_selected[t] > E)
      throw_error("experts per token: token ", t, " uses ", int{n_selected[t]}, " experts, more than the ", E,
                  " there are");
    ++r.histogram[n_selected[t]];
    slots += n_selected[t];
  }
  r.mean = N ? static_cast<double>(slots) / static_cast<double>(N) : 0.0;
  return r;
}

GroupedExperts experts_by_loss_quantile(const uint8_t* n_selected /*[N]*/, const float* loss /*[N]*/, int64_t N,
                                        int64_t n_quantiles) {
  if (n_quantiles < 1) throw_error("experts by loss quantile: expected at least 1 quantile, got ", n_quantiles);
  std::vector<int64_t> order;  // [M] tokens with a finite loss, by ascending loss then token
  for (int64_t t = 0; t < N; ++t)
    if (std::isfinite(loss[t])) order.push_back(t);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return loss[a] < loss[b]; });
  const int64_t M = static_cast<int64_t>(order.size());

  GroupedExperts r;
  for (int64_t q = 0; q < n_quantiles; ++q) {
    const int64_t begin = q * M / n_quantiles, end = (q + 1) * M / n_quantiles;
    ExpertGroup g;
    g.tokens = end - begin;
    g.mean_experts = kNaN;
    char label[96];
    if (g.tokens == 0) {
      std::snprintf(label, sizeof label, "q%lld (none)", static_cast<long long>(q + 1));
    } else {
      double experts = 0, losses = 0;
      for (int64_t i = begin; i < end; ++i) experts += n_selected[order[i]], losses += loss[order[i]];
      g.mean_experts = experts / static_cast<double>(g.tokens);
      g.mean_loss = losses / static_cast<double>(g.tokens);
      g.loss_min = loss[order[begin]];
      g.loss_max = loss[order[end - 1]];
      std::snprintf(label, sizeof label, "q%lld (%.2f-%.2f)", static_cast<long long>(q + 1), g.loss_min, g.loss_max);
    }
    g.label = label;
    r.groups.push_back(std::move(g));
  }

  std::vector<double> l(M), k(M);  // [M] loss and experts of the finite-loss tokens
  for (int64_t i = 0; i < M; ++i) l[i] = loss[order[i]], k[i] = n_selected[order[i]];
  r.spearman = pearson(average_ranks(l), average_ranks(k));
  return r;
}

GroupedExperts experts_by_label(const uint8_t* n_selected /*[N]*/, const uint8_t* labels /*[N]*/, int64_t N,
                                const std::vector<std::string>& names) {
  const int64_t C = static_cast<int64_t>(names.size());
  std::vector<int64_t> tokens(C, 0), experts(C, 0);  // [C]
  for (int64_t t = 0; t < N; ++t)
    if (labels[t] < C) ++tokens[labels[t]], experts[labels[t]] += n_selected[t];
  GroupedExperts r;
  for (int64_t c = 0; c < C; ++c) {
    ExpertGroup g;
    g.label = names[c];
    g.tokens = tokens[c];
    g.mean_experts = tokens[c] ? static_cast<double>(experts[c]) / static_cast<double>(tokens[c]) : kNaN;
    r.groups.push_back(std::move(g));
  }
  return r;
}

TrainingCourse read_training_course(const std::string& metrics_jsonl_path) {
  std::ifstream in(metrics_jsonl_path);
  if (!in) throw_error("metrics log ", metrics_jsonl_path, ": cannot open");
  TrainingCourse course;
  bool have_layers = false;
  std::vector<int64_t> layers;  // [L] of the record being read
  std::vector<double> means;    // [L]
  std::string line;
  for (int64_t line_no = 1; std::getline(in, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = "metrics log " + metrics_jsonl_path + " line " + std::to_string(line_no);
    const auto record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    // A last line without its newline was cut short by a hard kill; the records before it stand.
    if (record.is_discarded() && in.eof()) break;
    if (record.is_discarded() || !record.is_object()) throw_error(where, ": expected one JSON object");
    const std::string type =
        record.contains("type") && record["type"].is_string() ? record["type"].get<std::string>() : std::string();
    if ((type != "train" && type != "eval") || !record.contains("routing")) continue;
    if (!record["routing"].is_array()) throw_error(where, ": expected \"routing\" to be an array");
    if (!record.contains("step") || !record["step"].is_number_integer())
      throw_error(where, ": expected an integer \"step\"");
    read_routing(record["routing"], where, layers, means);
    if (!have_layers) {
      course.layers = layers;
      course.mean_experts.resize(layers.size());
      course.eval_mean_experts.resize(layers.size());
      have_layers = true;
    } else if (layers != course.layers) {
      throw_error(where, ": the \"routing\" layers differ from those of the records before it");
    }
    const int64_t step = record["step"].get<int64_t>();
    const bool train = type == "train";
    (train ? course.steps : course.eval_steps).push_back(step);
    if (train)
      course.tokens.push_back(
          record.contains("tokens") && record["tokens"].is_number_integer() ? record["tokens"].get<int64_t>() : 0);
    auto& series = train ? course.mean_experts : course.eval_mean_experts;
    for (size_t l = 0; l < means.size(); ++l) series[l].push_back(means[l]);
  }
  return course;
}

nlohmann::json to_json(const ExpertsPerToken& result) {
  return {{"tokens", result.tokens}, {"mean", result.mean}, {"histogram", result.histogram}};
}

nlohmann::json to_json(const GroupedExperts& result) {
  nlohmann::json groups = nlohmann::json::array();
  for (const auto& g : result.groups)
    groups.push_back({{"label", g.label},
                      {"tokens", g.tokens},
                      {"mean_experts", number_or_null(g.mean_experts)},
                      {"mean_loss", number_or_null(g.mean_loss)},
                      {"loss_min", number_or_null(g.loss_min)},
                      {"loss_max", number_or_null(g.loss_max)}});
  return {{"groups", std::move(groups)}, {"spearman", number_or_null(result.spearman)}};
}

nlohmann::json to_json(const TrainingCourse& result) {
  return {{"layers", result.layers},         {"steps", result.steps},
          {"tokens", result.tokens},         {"mean_experts", result.mean_experts},
          {"eval_steps", result.eval_steps}, {"eval_mean_experts", result.eval_mean_experts}};
}

}  // namespace moelab::analysis
