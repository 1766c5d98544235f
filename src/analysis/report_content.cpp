#include "analysis/report_content.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <optional>

#include "core/error.h"
#include "core/version.h"
#include "report/chart.h"
#include "train/checkpoint.h"

namespace moelab::analysis {

namespace {

using nlohmann::json;
using report::Chart;
using report::HeatmapOptions;

std::string fmt(double v, const char* f = "%.3f") {
  if (!std::isfinite(v)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string layer_name(int64_t layer) { return "layer " + std::to_string(layer); }

std::vector<std::string> expert_labels(int64_t E) {
  std::vector<std::string> out;
  for (int64_t e = 0; e < E; ++e) out.push_back("e" + std::to_string(e));
  return out;
}

std::vector<std::string> layer_labels(const CheckpointAnalysis& a) {
  std::vector<std::string> out;
  for (const auto& la : a.layers) out.push_back(layer_name(la.layer));
  return out;
}

// Pixels per cell so that a panel of n cells per side stays about `side` pixels (four panels and a legend fit a row).
int cell_px(int64_t n, int side = 150) { return std::clamp(static_cast<int>(side / std::max<int64_t>(n, 1)), 3, 40); }

// One [E,E] heatmap per layer, side by side, on one colour scale.
json per_layer_square(const CheckpointAnalysis& a, const std::vector<std::vector<double>>& matrices /*[L][E*E]*/,
                      const std::string& row_title, const std::string& col_title, const std::string& value_title,
                      HeatmapOptions options) {
  const int64_t E = a.n_experts;
  options.cell_size = cell_px(E);
  options.max_cells_with_values = 0;
  std::vector<json> panels;
  for (const auto& m : matrices)
    panels.push_back(
        report::heatmap(m, E, E, expert_labels(E), expert_labels(E), row_title, col_title, value_title, options));
  return report::concat_charts(panels, layer_labels(a), 4, true);
}

// The chart build(cell) with the largest cell size from `largest` down to `smallest` whose grid has at least
// `columns` panels a row and fits the report's width; nullopt when none does.
std::optional<json> fitted(const std::function<json(int)>& build, int largest, int smallest, int columns) {
  for (int cell = largest; cell >= smallest; --cell) {
    json chart = build(cell);
    if (chart["columns"].get<int>() >= columns && report::estimated_width_px(chart) <= report::kMaxChartWidthPx)
      return chart;
  }
  return std::nullopt;
}

// A line chart whose x values are whole numbers (layers, quantiles, steps): ticks on integers only.
json whole_number_x(json spec) {
  spec["encoding"]["x"]["axis"] = {{"tickMinStep", 1}, {"format", "d"}};
  return spec;
}

double mean_off_diagonal(const std::vector<double>& m, int64_t E) {
  double s = 0;
  int64_t n = 0;
  for (int64_t i = 0; i < E; ++i)
    for (int64_t j = 0; j < E; ++j)
      if (i != j && std::isfinite(m[i * E + j])) s += m[i * E + j], ++n;
  return n ? s / n : std::nan("");
}

double max_off_diagonal(const std::vector<double>& m, int64_t E) {
  double best = std::nan("");
  for (int64_t i = 0; i < E; ++i)
    for (int64_t j = 0; j < E; ++j)
      if (i != j && std::isfinite(m[i * E + j]) && !(best >= m[i * E + j])) best = m[i * E + j];
  return best;
}

// counts [E,C] -> each label's share of its slots per expert (columns sum to 1): which experts a class goes to.
std::vector<double> column_shares(const Contingency& t) {
  std::vector<double> out(t.counts.size(), std::nan(""));
  for (int64_t c = 0; c < t.n_labels; ++c) {
    int64_t col = 0;
    for (int64_t e = 0; e < t.n_experts; ++e) col += t.counts[e * t.n_labels + c];
    if (col > 0)
      for (int64_t e = 0; e < t.n_experts; ++e)
        out[e * t.n_labels + c] = static_cast<double>(t.counts[e * t.n_labels + c]) / col;
  }
  return out;
}

// A z-score, or why there is none: a baseline without spread (every permutation scoring the same) has no z.
std::string z_fmt(const PermutationScore& s) {
  if (std::isfinite(s.z)) return fmt(s.z, "%.1f");
  return std::isfinite(s.baseline_std) ? "no spread" : "n/a";
}
std::string z_text(const PermutationScore& s) { return fmt(s.observed, "%.4f") + " (z " + z_fmt(s) + ")"; }

// What the label sections say for a trace without labels.
std::string no_labels_text(const CheckpointAnalysis& a) {
  return "The traced text (" + a.source +
         ") has no labels: the analyses by label run on a labelled split, such as the Brown corpus's (classes of "
         "\"pos\" and \"genre\") or a corpus prepared with `moelab data text --label FIELD`.";
}

report::ReportSection overview(const CheckpointAnalysis& a) {
  report::ReportSection s{"overview", "Overview", {}, {}, {}};
  const json& c = a.config;
  const json& r = c["routing"];
  s.paragraphs.push_back((a.hf_model_type.empty()
                              ? "Checkpoint " + a.checkpoint + " (step " + std::to_string(a.step) + ")"
                              : "Hugging Face model " + a.checkpoint + " (" + a.hf_model_type + ")") +
                         ", traced on " + a.source + ": " + std::to_string(a.tokens) +
                         " tokens, mean next-token loss " + fmt(a.mean_loss, "%.4f") + " nats.");
  s.paragraphs.push_back("Model: " + std::to_string(c["model"]["n_layers"].get<int64_t>()) + " layers, d_model " +
                         std::to_string(c["model"]["d_model"].get<int64_t>()) + ", " + std::to_string(a.n_experts) +
                         " experts of " + std::to_string(c["moe"]["expert_hidden"].get<int64_t>()) +
                         " neurons. Routing: " + r["router"].get<std::string>() + " " + r["gating"].get<std::string>() +
                         " router, rule " + r["rule"].get<std::string>() +
                         (r["rule"] == "top_p" ? " (p " + fmt(r["top_p"].get<double>(), "%.2f") + ")"
                                               : " (k " + std::to_string(a.top_k) + ")") +
                         ", " + r["granularity"].get<std::string>() + "-level.");
  s.paragraphs.push_back(
      "Active parameters per token with the measured experts per token: " + fmt(a.active_params / 1e6, "%.2f") + "M, " +
      fmt(100 * a.active_params / static_cast<double>(a.active_params_topk), "%.1f") + "% of top-" +
      std::to_string(a.top_k) + "'s " + fmt(a.active_params_topk / 1e6, "%.2f") + "M.");
  std::string timing = "Time per stage:";
  for (const auto& [name, sec] : a.timings) timing += " " + name + " " + fmt(sec, "%.1f") + " s;";
  s.paragraphs.push_back(timing + " Report written by moelab " + kVersion + ".");
  std::vector<std::string> header = {"layer", "experts / token"};
  for (const auto& channel : a.labels) header.push_back(channel.name + " NMI (z)");
  for (const char* column : {"top score = top norm", "score/norm Spearman", "mean weight cosine (gate)",
                             "mean output cosine", "dead experts", "collapsed pairs"})
    header.push_back(column);
  s.table.push_back(header);
  for (const auto& la : a.layers) {
    std::vector<std::string> row = {std::to_string(la.layer), fmt(la.experts_per_token.mean, "%.3f")};
    for (const auto& label : la.by_label) row.push_back(z_text(label.specialisation.nmi));
    for (std::string cell : {fmt(la.dynamics.top_score_is_top_norm), fmt(la.dynamics.mean_spearman),
                             fmt(mean_off_diagonal(la.statics.flattened[0], a.n_experts)),
                             fmt(mean_off_diagonal(la.dynamics.output_cosine, a.n_experts)),
                             std::to_string(la.health.dead.size()), std::to_string(la.health.collapsed.size())})
      row.push_back(std::move(cell));
    s.table.push_back(std::move(row));
  }
  return s;
}

report::ReportSection training_section(const CheckpointAnalysis& a, const std::optional<LossHistory>& history) {
  report::ReportSection s{"training", "Training", {}, {}, {}};
  if (!history && !a.hf_model_type.empty()) {
    s.paragraphs.push_back("A Hugging Face model, trained elsewhere: there is no training log to show.");
    return s;
  }
  if (!history) {
    s.paragraphs.push_back("No metrics log beside the checkpoint (" + run_folder_of(a.checkpoint) +
                           "/metrics.jsonl is missing, as for a checkpoint copied out of its run): the loss curves "
                           "are not shown.");
    return s;
  }
  if (history->train_steps.empty() && history->val_steps.empty()) {
    s.paragraphs.push_back("The metrics log " + history->path +
                           " holds no loss records: the loss curves are not shown.");
    return s;
  }
  std::string summary = "From the run's metrics log " + history->path + ".";
  if (!history->train_steps.empty())
    summary += " Last logged training loss " + fmt(history->train_loss.back(), "%.4f") + " at step " +
               std::to_string(history->train_steps.back()) + ".";
  if (!history->val_steps.empty())
    summary += " Last validation loss " + fmt(history->val_loss.back(), "%.4f") + " (perplexity " +
               fmt(std::exp(history->val_loss.back()), "%.1f") + ") at step " +
               std::to_string(history->val_steps.back()) + ".";
  s.paragraphs.push_back(summary);
  s.charts.push_back(loss_chart(*history, a.step));
  return s;
}

report::ReportSection config_section(const CheckpointAnalysis& a) {
  report::ReportSection s{"configuration", "Configuration", {}, {}, {}};
  s.paragraphs.push_back(
      "Every setting of the checkpoint's config.json, defaults filled in (docs/config.md says what each means); "
      "data.dir is the data folder the report read (its tokenizer, and the split it traced unless --text named a "
      "file).");
  s.table = config_table(a.config);
  return s;
}

report::ReportSection routing_section(const CheckpointAnalysis& a) {
  const int64_t E = a.n_experts, L = static_cast<int64_t>(a.layers.size());
  report::ReportSection s{"routing", "Routing and load", {}, {}, {}};
  s.paragraphs.push_back(
      "How the traced tokens were spread over the experts, and how many experts each token used. A balanced layer "
      "gives every expert about k/E of the tokens.");
  std::vector<double> load(L * E), mean(L);
  for (int64_t l = 0; l < L; ++l) {
    for (int64_t e = 0; e < E; ++e) load[l * E + e] = static_cast<double>(a.layers[l].expert_slots[e]) / a.tokens;
    mean[l] = a.layers[l].experts_per_token.mean;
  }
  HeatmapOptions h;
  h.cell_size = 36;
  s.charts.push_back(
      {"expert-load", "Fraction of tokens routed to each expert",
       "Rows: MoE layers; columns: experts. Under top-k a row sums to k.",
       report::heatmap(load, L, E, layer_labels(a), expert_labels(E), "layer", "expert", "fraction of tokens", h)});
  s.charts.push_back({"experts-per-token", "Mean experts per token by layer",
                      "Paper 2 reports more experts in lower layers and fewer in upper ones under top-p routing.",
                      report::bar_chart(layer_labels(a), mean, "layer", "experts per token")});
  std::vector<std::string> bins;
  for (int64_t j = 0; j <= E; ++j) bins.push_back(std::to_string(j));
  std::vector<std::vector<double>> hist(L, std::vector<double>(E + 1));
  for (int64_t l = 0; l < L; ++l)
    for (int64_t j = 0; j <= E; ++j)
      hist[l][j] = static_cast<double>(a.layers[l].experts_per_token.histogram[j]) / a.tokens;
  s.charts.push_back(
      {"experts-per-token-histogram", "Experts per token: distribution by layer",
       "Fraction of tokens that used each number of experts.",
       report::grouped_bar_chart(bins, layer_labels(a), hist, "experts per token", "fraction of tokens", "layer")});
  if (a.course && !a.course->steps.empty()) {
    std::vector<report::LineSeries> series;
    for (int64_t l = 0; l < static_cast<int64_t>(a.course->layers.size()); ++l) {
      report::LineSeries ls{layer_name(a.course->layers[l]), {}, a.course->mean_experts[l]};
      for (int64_t step : a.course->steps) ls.x.push_back(static_cast<double>(step));
      series.push_back(std::move(ls));
    }
    s.charts.push_back({"experts-per-token-training", "Experts per token over training",
                        "From the run's metrics log (the last micro-batch of each logged step). Paper 2: 2.42 early, "
                        "1.82 after 100B tokens.",
                        whole_number_x(report::line_chart(series, "step", "experts per token", "layer"))});
  } else if (a.hf_model_type.empty()) {
    s.paragraphs.push_back("No metrics log beside the checkpoint: the course over training is not shown.");
  }
  return s;
}

report::ReportSection loss_by_label_section(const CheckpointAnalysis& a) {
  report::ReportSection s{"loss-by-label", "Perplexity by label", {}, {}, {}};
  if (a.labels.empty()) {
    s.paragraphs.push_back(no_labels_text(a));
    return s;
  }
  s.paragraphs.push_back(
      "The traced tokens' next-token loss by the class of the token predicted, for each label channel (`moelab eval` "
      "gives the same on a whole split). Which genres or word classes the model finds hard, and where routing "
      "differences might matter.");
  s.table.push_back({"label", "class", "tokens", "loss (nats)", "perplexity"});
  for (const auto& channel : a.loss_by_label) {
    std::vector<std::string> classes;
    std::vector<double> perplexity;
    for (const auto& c : channel.classes) {
      s.table.push_back(
          {channel.channel, c.name, std::to_string(c.tokens), fmt(c.loss, "%.4f"), fmt(c.perplexity, "%.2f")});
      classes.push_back(c.name), perplexity.push_back(c.perplexity);
    }
    s.charts.push_back({"perplexity-by-" + channel.channel, "Perplexity by " + channel.channel,
                        "Perplexity of the traced targets of each class of the label \"" + channel.channel +
                            "\" (classes without a traced target are left out).",
                        report::bar_chart(classes, perplexity, channel.channel, "perplexity")});
  }
  return s;
}

report::ReportSection specialisation_section(const CheckpointAnalysis& a) {
  report::ReportSection s{"specialisation", "Expert specialisation (paper 1)", {}, {}, {}};
  if (a.labels.empty()) {
    s.paragraphs.push_back(no_labels_text(a));
    return s;
  }
  s.paragraphs.push_back(
      "Normalised mutual information between the expert a slot goes to and the token's class in each label channel "
      "(the Brown corpus: \"pos\", the part of speech of its word, syntax; \"genre\", its document's genre, topic; a "
      "corpus of your own: the fields it was prepared with), against a baseline of shuffled labels: z is how many "
      "baseline standard deviations the observed NMI lies above chance. Paper 1: token-level routing specialises "
      "to syntax, sequence-level routing weakly to topic.");
  const SpecialisationResult& first = a.layers.front().by_label.front().specialisation;
  s.paragraphs.push_back(
      "Baseline: " + std::to_string(first.permutations) + " permutations per label (seed " +
      std::to_string(first.seed) + " for the first, one more for each next) " +
      (first.block > 1 ? "moving the labels of whole " + std::to_string(first.block) +
                             "-token windows, so that labels clustered in documents and routing shared by a window "
                             "(sequence-level) do not pass for specialisation"
                       : "shuffling single tokens' labels") +
      ".");
  s.table.push_back({"layer", "label", "NMI", "baseline mean ± std", "z", "p", "purity", "purity z"});
  const size_t C = a.labels.size();
  std::vector<std::string> names;  // [C]
  for (const auto& channel : a.labels) names.push_back(channel.name);
  std::vector<std::vector<double>> z(C, std::vector<double>(a.layers.size(), std::nan("")));  // [C][L]
  for (size_t l = 0; l < a.layers.size(); ++l)
    for (size_t c = 0; c < C; ++c) {
      const SpecialisationResult& sp = a.layers[l].by_label[c].specialisation;
      s.table.push_back({std::to_string(a.layers[l].layer), names[c], fmt(sp.nmi.observed, "%.4f"),
                         fmt(sp.nmi.baseline_mean, "%.5f") + " ± " + fmt(sp.nmi.baseline_std, "%.5f"), z_fmt(sp.nmi),
                         fmt(sp.nmi.p_value, "%.3g"), fmt(sp.purity.observed), z_fmt(sp.purity)});
      z[c][l] = sp.nmi.z;
    }
  s.charts.push_back({"specialisation-z", "Specialisation above chance (NMI z-score)",
                      "z of the NMI against the permutation baseline, per layer, for each label.",
                      report::grouped_bar_chart(layer_labels(a), names, z, "layer", "NMI z-score", "label")});
  for (size_t c = 0; c < C; ++c) {
    std::vector<Contingency> tables;  // [L]
    for (const auto& la : a.layers) tables.push_back(la.by_label[c].specialisation.table);
    s.charts.push_back(label_routing_chart(names[c] + "-by-expert",
                                           "Where each class of \"" + names[c] + "\" is routed", names[c] + " class",
                                           tables, a.labels[c].classes, layer_labels(a)));
  }
  return s;
}

report::ReportSection dynamic_routing_section(const CheckpointAnalysis& a) {
  report::ReportSection s{"dynamic-routing", "Experts per token and difficulty (paper 2)", {}, {}, {}};
  s.paragraphs.push_back(
      "Do harder tokens get more experts? Tokens are grouped by their next-token loss (q1 = easiest decile). Under "
      "top-k every token gets k experts, so the lines are flat; under top-p they may rise.");
  std::vector<report::LineSeries> by_loss;
  s.table.push_back(
      {"layer", "Spearman(loss, experts per token)", "experts per token, easiest group", "hardest group"});
  for (const auto& la : a.layers) {
    report::LineSeries ls{layer_name(la.layer), {}, {}};
    for (size_t q = 0; q < la.by_loss.groups.size(); ++q) {
      ls.x.push_back(static_cast<double>(q + 1));
      ls.y.push_back(la.by_loss.groups[q].mean_experts);
    }
    by_loss.push_back(std::move(ls));
    s.table.push_back({std::to_string(la.layer), fmt(la.by_loss.spearman), fmt(la.by_loss.groups.front().mean_experts),
                       fmt(la.by_loss.groups.back().mean_experts)});
  }
  s.charts.push_back(
      {"experts-by-loss", "Experts per token by token loss quantile",
       "x: loss quantile of the token (1 = lowest loss); y: mean experts per token.",
       whole_number_x(report::line_chart(by_loss, "loss quantile (1 = easiest)", "experts per token", "layer"))});
  for (size_t c = 0; c < a.labels.size(); ++c) {
    const std::string& name = a.labels[c].name;
    std::vector<std::vector<double>> values;  // [L][classes]
    for (const auto& la : a.layers) {
      std::vector<double> v;
      for (const auto& g : la.by_label[c].experts_per_class.groups) v.push_back(g.mean_experts);
      values.push_back(std::move(v));
    }
    s.charts.push_back(
        {"experts-by-label-" + name, "Experts per token by class of \"" + name + "\"",
         "Mean experts per token of each class of the label \"" + name + "\", per layer.",
         report::grouped_bar_chart(a.labels[c].classes, layer_labels(a), values, name, "experts per token", "layer")});
  }
  return s;
}

report::ReportSection static_section(const CheckpointAnalysis& a) {
  const int64_t E = a.n_experts, L = static_cast<int64_t>(a.layers.size());
  report::ReportSection s{"static", "Expert weights (paper 3, static)", {}, {}, {}};
  s.paragraphs.push_back(
      "Cosine similarity between experts' weights: each whole matrix flattened, and each matrix averaged over its "
      "neurons (independent of neuron order). Neuron matching puts one expert's neurons in the order of another's by "
      "a maximum-weight assignment; similarity after matching near 1 means the experts are the same up to a "
      "permutation of neurons. Paper 3 finds experts' diversity grows with depth, except in the last layer.");
  HeatmapOptions sim;
  sim.scheme = report::ColorScheme::blue_orange;
  sim.domain = std::array<double, 2>{-1, 1};
  for (int kind = 0; kind < kMatrixKinds; ++kind) {
    const std::string name = kMatrixKindNames[kind];
    std::vector<std::vector<double>> flat, avg;
    for (const auto& la : a.layers)
      flat.push_back(la.statics.flattened[kind]), avg.push_back(la.statics.neuron_averaged[kind]);
    s.charts.push_back({"weight-similarity-" + name, "Flattened " + name + " weight similarity between experts",
                        "Cosine between experts' flattened " + name + " matrices.",
                        per_layer_square(a, flat, "expert", "expert", "cosine", sim)});
    s.charts.push_back({"neuron-averaged-similarity-" + name, "Neuron-averaged " + name + " similarity",
                        "Cosine between experts' " + name + " matrices averaged over their neurons.",
                        per_layer_square(a, avg, "expert", "expert", "cosine", sim)});
  }
  // Neuron matching: the pairs' similarity after reordering (all three matrices) and Kendall tau of the matching.
  if (!a.layers.front().statics.reordering.empty()) {
    std::vector<std::vector<double>> after, tau;
    const auto& first = a.layers.front().statics;
    if (static_cast<int64_t>(first.reordering.front().neurons.size()) < first.h)
      s.paragraphs.push_back("Each pair is matched on " + std::to_string(first.reordering.front().neurons.size()) +
                             " of its " + std::to_string(first.h) +
                             " neurons, evenly spaced and at the same positions in both experts (--match-neurons): "
                             "the cosines before and after matching are those of these neurons.");
    s.table.push_back(
        {"layer", "pairs matched", "mean cosine before (gate/up/down)", "after matching", "mean Kendall tau"});
    for (const auto& la : a.layers) {
      std::vector<double> m(E * E, std::nan("")), t(E * E, std::nan(""));
      std::array<double, kMatrixKinds> before_sum{}, after_sum{};
      double tau_sum = 0;
      for (const auto& r : la.statics.reordering) {
        double mean_after = 0;
        for (int k = 0; k < kMatrixKinds; ++k)
          mean_after += r.cosine_after[k] / kMatrixKinds, before_sum[k] += r.cosine_before[k],
              after_sum[k] += r.cosine_after[k];
        m[r.a * E + r.b] = m[r.b * E + r.a] = mean_after;
        t[r.a * E + r.b] = t[r.b * E + r.a] = r.kendall_tau;
        tau_sum += r.kendall_tau;
      }
      const double n = static_cast<double>(la.statics.reordering.size());
      s.table.push_back({std::to_string(la.layer), std::to_string(la.statics.reordering.size()),
                         fmt(before_sum[0] / n) + " / " + fmt(before_sum[1] / n) + " / " + fmt(before_sum[2] / n),
                         fmt(after_sum[0] / n) + " / " + fmt(after_sum[1] / n) + " / " + fmt(after_sum[2] / n),
                         fmt(tau_sum / n)});
      after.push_back(std::move(m)), tau.push_back(std::move(t));
    }
    s.charts.push_back({"matched-similarity", "Expert similarity after neuron matching",
                        "Mean over gate, up and down of the flattened cosine once one expert's neurons are put in "
                        "the other's order (blank: pair not matched).",
                        per_layer_square(a, after, "expert", "expert", "cosine after matching", sim)});
    s.charts.push_back({"matching-kendall-tau", "Kendall tau of the neuron matching",
                        "1: the neurons were already aligned (as in experts copied from one dense FFN); about 0: "
                        "unrelated orders, as for experts trained from independent initialisations.",
                        per_layer_square(a, tau, "expert", "expert", "Kendall tau", sim)});
  }
  // Router rows against experts.
  if (a.layers.front().statics.router_fit) {
    std::vector<std::vector<double>> r2(kMatrixKinds, std::vector<double>(L));
    std::vector<double> x, y;
    std::vector<std::string> group;
    for (int64_t l = 0; l < L; ++l) {
      const auto& st = a.layers[l].statics;
      for (int k = 0; k < kMatrixKinds; ++k) r2[k][l] = (*st.router_fit)[k].r2;
      const auto xs = strict_lower_triangle(st.neuron_averaged[0], E), ys = strict_lower_triangle(st.router, E);
      x.insert(x.end(), xs.begin(), xs.end()), y.insert(y.end(), ys.begin(), ys.end());
      group.insert(group.end(), xs.size(), layer_name(a.layers[l].layer));
    }
    std::vector<double> mean_r2(kMatrixKinds, 0);
    for (int k = 0; k < kMatrixKinds; ++k) {
      for (double v : r2[k]) mean_r2[k] += v / L;
    }
    s.paragraphs.push_back(
        "Router-row similarity against neuron-averaged expert similarity, r² averaged over layers "
        "(gate / up / down): " +
        fmt(mean_r2[0]) + " / " + fmt(mean_r2[1]) + " / " + fmt(mean_r2[2]) +
        ". Paper 3 reports Mixtral 0.33 / 0.06 / 0.07 and DeepSeekMoE 0.40 / "
        "0.00 / 0.00.");
    s.charts.push_back(
        {"router-fit-r2", "Router similarity explained by expert similarity (r²)",
         "r² of a linear fit of router-row cosine on neuron-averaged expert cosine, strict lower "
         "triangles, per layer and matrix.",
         report::grouped_bar_chart(layer_labels(a), {"gate", "up", "down"}, r2, "layer", "r²", "matrix")});
    report::ScatterOptions so;
    so.group = group, so.group_title = "layer";
    s.charts.push_back({"router-vs-gate-similarity", "Router-row similarity against gate similarity",
                        "Each point is a pair of experts of one layer.",
                        report::scatter_chart(x, y, "neuron-averaged gate cosine", "router-row cosine", so)});
  }
  // PCA.
  std::vector<json> expert_panels, neuron_panels;
  for (const auto& la : a.layers) {
    const auto& pe = la.statics.pca_experts[0];
    std::vector<double> px, py;
    for (int64_t e = 0; e < E; ++e) px.push_back(pe.coords[e * 2]), py.push_back(pe.coords[e * 2 + 1]);
    report::ScatterOptions so;
    so.label = expert_labels(E), so.group = expert_labels(E), so.group_title = "expert";
    expert_panels.push_back(report::scatter_chart(px, py, "PC1", "PC2", so));
    const auto& pn = la.statics.pca_neurons[0];
    std::vector<double> nx, ny;
    std::vector<std::string> ng;
    for (size_t i = 0; i < pn.expert.size(); ++i)
      nx.push_back(pn.coords[i * 2]), ny.push_back(pn.coords[i * 2 + 1]),
          ng.push_back("e" + std::to_string(pn.expert[i]));
    report::ScatterOptions sn;
    sn.group = ng, sn.group_title = "expert";
    neuron_panels.push_back(report::scatter_chart(nx, ny, "PC1", "PC2", sn));
  }
  s.charts.push_back({"pca-experts", "PCA of experts (gate matrices)",
                      "Each point is an expert's flattened gate matrix projected on the first two principal "
                      "components of its layer.",
                      report::concat_charts(expert_panels, layer_labels(a), 4, true)});
  s.charts.push_back({"pca-neurons", "PCA of neurons (gate rows)",
                      "Gate neurons of every expert of a layer on the layer's first two principal components "
                      "(a sample of each expert's neurons); clusters by colour mean neurons specialised by expert.",
                      report::concat_charts(neuron_panels, layer_labels(a), 2, true)});
  return s;
}

report::ReportSection dynamic_section(const CheckpointAnalysis& a) {
  const int64_t E = a.n_experts, L = static_cast<int64_t>(a.layers.size());
  const auto& first = a.layers.front().dynamics;
  report::ReportSection s{"dynamic-experts", "Expert outputs (paper 3, dynamic)", {}, {}, {}};
  s.paragraphs.push_back(
      "Every expert run on the same " + std::to_string(first.n_tokens) +
      " traced tokens (each layer's real input). Similar outputs mean redundant experts. The rank co-occurrence "
      "counts, for each token and expert, the expert's rank by router score (rows) against its rank by output norm "
      "(columns): mass on the diagonal means the router prefers the experts that would write the most, which paper "
      "3 finds for Mixtral (the top-scored expert is the largest-norm one about 4x more often than any other rank).");
  HeatmapOptions sim;
  sim.scheme = report::ColorScheme::blue_orange;
  sim.domain = std::array<double, 2>{-1, 1};
  std::vector<std::vector<double>> cos, ang, cooc;
  for (const auto& la : a.layers) {
    cos.push_back(la.dynamics.output_cosine), ang.push_back(la.dynamics.output_angular);
    if (!la.dynamics.rank_cooccurrence.empty())
      cooc.emplace_back(la.dynamics.rank_cooccurrence.begin(), la.dynamics.rank_cooccurrence.end());
  }
  s.charts.push_back({"output-similarity", "Expert output similarity (cosine)",
                      "Mean over tokens of the cosine between two experts' outputs for the same input.",
                      per_layer_square(a, cos, "expert", "expert", "output cosine", sim)});
  HeatmapOptions angular;
  angular.domain = std::array<double, 2>{0, 1};
  s.charts.push_back({"output-angular-similarity", "Expert output similarity (angular)",
                      "Mean over tokens of 1 - arccos(cos)/π: 0.5 for orthogonal outputs, 1 for parallel ones.",
                      per_layer_square(a, ang, "expert", "expert", "angular similarity", angular)});
  if (!cooc.empty()) {
    // Paper 3's measure beside the paper's value: how much more often the top-scored expert is the largest-norm one
    // than the most frequent other norm rank, averaged over layers.
    double ratio = 0, top = 0;
    for (size_t l = 0; l < cooc.size(); ++l) {
      const double first = cooc[l][0];
      const double other = *std::max_element(cooc[l].begin() + 1, cooc[l].begin() + E);
      ratio += (other > 0 ? first / other : std::nan("")) / static_cast<double>(cooc.size());
    }
    for (const auto& la : a.layers) top += la.dynamics.top_score_is_top_norm / static_cast<double>(L);
    s.paragraphs.push_back(
        "Measured here, averaged over layers: the top-scored expert is the largest-norm one " + fmt(ratio, "%.2f") +
        "x as often as the next most frequent norm rank (paper 3, Mixtral: "
        "about 4x), for " +
        fmt(100 * top, "%.1f") + "% of tokens (chance " + fmt(100.0 / static_cast<double>(E), "%.1f") + "%).");
    std::vector<std::string> ranks;
    for (int64_t r = 0; r < E; ++r) ranks.push_back(std::to_string(r + 1));
    std::vector<json> panels;
    HeatmapOptions b;
    b.scheme = report::ColorScheme::blues;
    b.cell_size = cell_px(E);
    b.max_cells_with_values = 0;
    for (const auto& m : cooc)
      panels.push_back(report::heatmap(m, E, E, ranks, ranks, "router score rank", "output norm rank", "count", b));
    s.charts.push_back({"score-norm-rank", "Router score rank against output norm rank",
                        "Rows: an expert's rank by router score (1 = top); columns: its rank by output norm.",
                        report::concat_charts(panels, layer_labels(a), 4, false)});
    std::vector<std::vector<double>> agree(3, std::vector<double>(L));
    for (int64_t l = 0; l < L; ++l) {
      agree[0][l] = a.layers[l].dynamics.top_score_is_top_norm;
      agree[1][l] = 1.0 / static_cast<double>(E);
      agree[2][l] = a.layers[l].dynamics.mean_spearman;
    }
    s.charts.push_back(
        {"score-norm-agreement", "Does the router pick the largest-norm experts?",
         "Fraction of tokens whose top-scored expert has the largest output (chance: 1/E), and the "
         "mean per-token Spearman correlation of router scores with output norms.",
         report::grouped_bar_chart(layer_labels(a), {"top score = top norm", "chance (1/E)", "Spearman(score, norm)"},
                                   agree, "layer", "value", "measure")});
  }
  std::vector<double> norms(L * E);
  for (int64_t l = 0; l < L; ++l)
    for (int64_t e = 0; e < E; ++e) norms[l * E + e] = a.layers[l].dynamics.output_norm_mean[e];
  HeatmapOptions nh;
  nh.cell_size = 36;
  s.charts.push_back(
      {"output-norms", "Mean output norm of each expert",
       "Mean L2 norm of the expert's output over the sampled tokens.",
       report::heatmap(norms, L, E, layer_labels(a), expert_labels(E), "layer", "expert", "mean output norm", nh)});
  // Gate activations: neurons averaged in bins so a panel stays readable; rows of 12 px, so that every expert is
  // labelled (a panel of 64 bins is then a row of its own).
  const int64_t h = first.h, bins = std::min<int64_t>(h, 64), per_bin = (h + bins - 1) / bins;
  std::vector<json> gate_panels;
  for (const auto& la : a.layers) {
    std::vector<double> m(E * bins, 0);
    for (int64_t e = 0; e < E; ++e)
      for (int64_t b = 0; b < bins; ++b) {
        const int64_t lo = b * per_bin, hi = std::min(h, lo + per_bin);
        for (int64_t j = lo; j < hi; ++j) m[e * bins + b] += la.dynamics.gate_activation_mean[e * h + j] / (hi - lo);
      }
    HeatmapOptions g;
    g.cell_size = 12;
    g.max_cells_with_values = 0;
    std::vector<std::string> cols;
    for (int64_t b = 0; b < bins; ++b) cols.push_back(std::to_string(b * per_bin));
    gate_panels.push_back(
        report::heatmap(m, E, bins, expert_labels(E), cols, "expert", "neuron", "mean |silu(gate x)|", g));
  }
  s.charts.push_back({"gate-activation", "Gate activation map",
                      "Mean |silu(w1 x)| per expert and neuron over the sampled tokens (neurons averaged in groups "
                      "of " +
                          std::to_string(per_bin) + "); a few bright neurons are the fine-grained experts of paper 3.",
                      report::concat_charts(gate_panels, layer_labels(a), 2, true)});
  // The prompt's chosen experts and gate activations.
  const int64_t P = static_cast<int64_t>(a.prompt_tokens.size());
  std::vector<std::string> tokens;
  for (int64_t t = 0; t < P; ++t) tokens.push_back(std::to_string(t) + " " + a.prompt_tokens[t]);
  std::vector<std::vector<double>> chosen;  // [L][P*E] routing weights; NaN (a blank cell) where not chosen
  for (const auto& la : a.layers) {
    std::vector<double> m(P * E, std::nan(""));
    for (int64_t t = 0; t < P; ++t)
      for (const auto& [e, w] : la.prompt_choices[t]) m[t * E + e] = w;
    chosen.push_back(std::move(m));
  }
  // Per layer a [P,E] map, as wide a column per expert as fits (22 px leaves a gap between labels such as "e0"
  // across), one panel a row at least.
  auto prompt_maps = [&](bool routing) {
    auto build = [&](int cell) {
      HeatmapOptions ph;
      ph.cell_size = cell;
      ph.max_cells_with_values = 0;
      std::vector<json> panels;
      for (size_t l = 0; l < a.layers.size(); ++l)
        panels.push_back(report::heatmap(routing ? chosen[l] : a.layers[l].prompt_gate_activation, P, E, tokens,
                                         expert_labels(E), "token", "expert",
                                         routing ? "routing weight" : "mean |silu(gate x)|", ph));
      return report::concat_charts(panels, layer_labels(a), 4, true);
    };
    return fitted(build, 22, 6, 1).value_or(build(6));
  };
  s.charts.push_back({"prompt-experts", "Chosen experts per token of the prompt",
                      "The routing weight of each expert a token of the prompt was sent to (blank: not chosen).",
                      prompt_maps(true)});
  s.charts.push_back({"prompt-gate-activation", "Gate activations per token of the prompt",
                      "Mean |silu(w1 x)| over each expert's neurons for each prompt token, whether or not the "
                      "token was routed there.",
                      prompt_maps(false)});
  std::vector<report::LineSeries> depth;
  for (int kind = 0; kind < kMatrixKinds; ++kind) {
    report::LineSeries ls{std::string("weights, ") + kMatrixKindNames[kind], {}, {}};
    for (const auto& la : a.layers)
      ls.x.push_back(static_cast<double>(la.layer)), ls.y.push_back(mean_off_diagonal(la.statics.flattened[kind], E));
    depth.push_back(std::move(ls));
  }
  report::LineSeries out{"outputs", {}, {}};
  for (const auto& la : a.layers)
    out.x.push_back(static_cast<double>(la.layer)), out.y.push_back(mean_off_diagonal(la.dynamics.output_cosine, E));
  depth.push_back(std::move(out));
  s.charts.push_back({"similarity-by-depth", "Expert similarity by depth",
                      "Mean cosine between different experts of a layer, of their weights and of their outputs. "
                      "Lower means more diverse experts; paper 3 finds diversity grows with depth except in the "
                      "last layer.",
                      whole_number_x(report::line_chart(depth, "layer", "mean cosine between experts", "of"))});
  return s;
}

report::ReportSection health_section(const CheckpointAnalysis& a) {
  const int64_t E = a.n_experts, L = static_cast<int64_t>(a.layers.size());
  report::ReportSection s{"health", "Expert health", {}, {}, {}};
  s.paragraphs.push_back(
      "Failure modes a loss curve hides: dead experts (no token of the traced set), rare ones (under " +
      fmt(100 * a.layers.front().health.options.rare_fraction, "%.0f") +
      "% of a uniform share), collapsed pairs (whole-expert weight cosine above " +
      fmt(a.layers.front().health.options.collapse_threshold, "%.2f") +
      "), and experts whose weights or gradients stand out.");
  s.table.push_back({"layer", "dead", "rare", "collapsed pairs", "largest whole-expert cosine"});
  std::vector<double> norms(L * E);
  for (int64_t l = 0; l < L; ++l) {
    const auto& h = a.layers[l].health;
    auto ids = [](const std::vector<int64_t>& v) {
      std::string out;
      for (int64_t e : v) out += (out.empty() ? "e" : ", e") + std::to_string(e);
      return out.empty() ? std::string("none") : out;
    };
    std::string collapsed;
    for (const auto& c : h.collapsed)
      collapsed += (collapsed.empty() ? "" : ", ") + ("e" + std::to_string(c.a) + "~e" + std::to_string(c.b));
    s.table.push_back({std::to_string(a.layers[l].layer), ids(h.dead), ids(h.rare),
                       collapsed.empty() ? "none" : collapsed, fmt(max_off_diagonal(h.whole_similarity, E))});
    for (int64_t e = 0; e < E; ++e) norms[l * E + e] = h.norm_total[e];
  }
  HeatmapOptions nh;
  nh.cell_size = 36;
  s.charts.push_back(
      {"expert-weight-norms", "Weight norm of each expert", "Frobenius norm of the expert's three matrices together.",
       report::heatmap(norms, L, E, layer_labels(a), expert_labels(E), "layer", "expert", "weight norm", nh)});
  if (a.grad_norms) {
    std::vector<json> panels;
    for (int64_t l = 0; l < L; ++l) {
      std::vector<report::LineSeries> series;
      for (int64_t e = 0; e < E; ++e) {
        report::LineSeries ls{"e" + std::to_string(e), {}, {}};
        for (size_t v = 0; v < a.grad_norms->steps.size(); ++v)
          ls.x.push_back(static_cast<double>(a.grad_norms->steps[v])), ls.y.push_back(a.grad_norms->norms[l][v][e]);
        series.push_back(std::move(ls));
      }
      panels.push_back(whole_number_x(report::line_chart(series, "step", "gradient norm", "expert", 380, 240)));
    }
    s.charts.push_back({"expert-grad-norms", "Per-expert gradient norm over training",
                        "Raw gradient norm of each expert at the steps the run evaluated (from the metrics log).",
                        report::concat_charts(panels, layer_labels(a), 2, true)});
  } else {
    s.paragraphs.push_back(
        "The run's metrics log has no per-expert gradient norms (runs trained before they were "
        "logged): that chart is not shown.");
  }
  return s;
}

}  // namespace

report::ReportDoc build_report(const CheckpointAnalysis& a, const std::optional<LossHistory>& history) {
  report::ReportDoc doc;
  doc.title = "moelab analysis";
  doc.subtitle =
      a.checkpoint +
      (a.hf_model_type.empty() ? " (step " + std::to_string(a.step) + ")" : " (Hugging Face " + a.hf_model_type + ")") +
      " on " + a.source + " · moelab " + kVersion;
  doc.sections = {overview(a),        training_section(a, history), loss_by_label_section(a),
                  routing_section(a), specialisation_section(a),    dynamic_routing_section(a),
                  static_section(a),  dynamic_section(a),           health_section(a),
                  config_section(a)};
  return doc;
}

report::Chart loss_chart(const LossHistory& history, int64_t checkpoint_step) {
  std::vector<report::LineSeries> series;
  if (!history.train_steps.empty()) {
    report::LineSeries train{"training", {}, history.train_loss};
    for (int64_t step : history.train_steps) train.x.push_back(static_cast<double>(step));
    series.push_back(std::move(train));
  }
  if (!history.val_steps.empty()) {
    report::LineSeries val{"validation", {}, history.val_loss};
    for (int64_t step : history.val_steps) val.x.push_back(static_cast<double>(step));
    series.push_back(std::move(val));
  }
  return {"loss-curves", "Loss over training",
          "Next-token cross-entropy (nats): of each logged training step (the mean over its micro-batches, without the "
          "auxiliary losses) and of each evaluation on the validation split. The analysed checkpoint is at step " +
              std::to_string(checkpoint_step) + ".",
          whole_number_x(report::line_chart(series, "step", "loss (nats)", "loss", 640, 280))};
}

std::vector<std::vector<std::string>> config_table(const json& config) {
  std::vector<std::vector<std::string>> table = {{"setting", "value"}};
  // Depth-first, so that a nested section keeps its keys together under its dotted path; an empty section is a
  // setting of its own ("{}"), an empty config none.
  auto add = [&](auto&& self, const std::string& prefix, const json& value) -> void {
    if (value.is_object() && (!value.empty() || prefix.empty())) {
      for (const auto& [key, item] : value.items()) self(self, prefix.empty() ? key : prefix + "." + key, item);
    } else {
      table.push_back({prefix, value.is_string() ? value.get<std::string>() : report::dump_json(value)});
    }
  };
  add(add, "", config);
  return table;
}

report::Chart label_routing_chart(const std::string& id, const std::string& title, const std::string& label_title,
                                  const std::vector<Contingency>& tables, const std::vector<std::string>& class_names,
                                  const std::vector<std::string>& layer_titles) {
  MOELAB_ASSERT(!tables.empty() && tables.size() == layer_titles.size(), "label_routing_chart: one table per layer");
  const int64_t E = tables.front().n_experts, C = static_cast<int64_t>(class_names.size());
  const double uniform = 1.0 / static_cast<double>(E);
  std::vector<std::vector<double>> shares;  // [L][E*C]
  double deviation = 0;
  for (const auto& t : tables) {
    MOELAB_ASSERT(t.n_experts == E && t.n_labels == C, "label_routing_chart: tables differ in shape");
    shares.push_back(column_shares(t));
    for (double v : shares.back())
      if (std::isfinite(v)) deviation = std::max(deviation, std::abs(v - uniform));
  }
  if (deviation == 0) deviation = uniform;  // all uniform (or empty): any span shows it white
  HeatmapOptions h;
  h.scheme = report::ColorScheme::blue_orange;
  h.mid = uniform;
  // A share is at least 0: where the data reach further below uniform than 0, the blue end is 0.
  h.domain = std::array<double, 2>{std::max(0.0, uniform - deviation), uniform + deviation};
  h.max_cells_with_values = 0;
  const std::string value_title = "share of the " + label_title + "'s slots";
  auto build = [&](int cell) {
    h.cell_size = cell;
    std::vector<json> panels;
    for (const auto& m : shares)
      panels.push_back(report::heatmap(m, E, C, expert_labels(E), class_names, "expert", label_title, value_title, h));
    return report::concat_charts(panels, layer_titles, 2, true);
  };
  // Two panels a row while every class keeps a labelled column (12 px), else one a row with what cells fit.
  const int two_a_row = std::min<int>(2, static_cast<int>(tables.size()));
  std::optional<json> chart = fitted(build, 40, 12, two_a_row);
  if (!chart) chart = fitted(build, 40, 4, 1);
  const std::string caption =
      "Each column (a " + label_title +
      ") shows the share of its slots that each expert receives; a column concentrated on few experts is a "
      "specialised class. White is the uniform share 1/" +
      std::to_string(E) + " = " + fmt(uniform, "%.3f") +
      "; orange cells receive more than that, blue ones less, up to the largest deviation in any layer (" +
      fmt(deviation, "%.3f") + "). Empty columns: classes absent from the traced tokens.";
  return {id, title, caption, chart ? *chart : build(4)};
}

std::vector<report::Chart> report_charts(const report::ReportDoc& doc) {
  std::vector<report::Chart> out;
  for (const auto& s : doc.sections) out.insert(out.end(), s.charts.begin(), s.charts.end());
  return out;
}

}  // namespace moelab::analysis
