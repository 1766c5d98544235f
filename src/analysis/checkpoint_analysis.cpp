#include "analysis/checkpoint_analysis.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "analysis/expert_weights.h"
#include "analysis/trace.h"
#include "core/error.h"
#include "data/tokenizer.h"
#include "eval/model_source.h"
#include "model/config.h"
#include "model/param_count.h"
#include "train/checkpoint.h"

namespace moelab::analysis {

namespace {

namespace fs = std::filesystem;

// Times each stage for the report's "where the time went" line.
class StageClock {
 public:
  explicit StageClock(std::vector<std::pair<std::string, double>>& out) : out_(out) {}
  void start(const std::string& name) {
    stop();
    name_ = name, t0_ = std::chrono::steady_clock::now();
  }
  void stop() {
    if (name_.empty()) return;
    out_.emplace_back(name_, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count());
    name_.clear();
  }

 private:
  std::vector<std::pair<std::string, double>>& out_;
  std::string name_;
  std::chrono::steady_clock::time_point t0_;
};

int64_t checkpoint_step(const std::string& ckpt) {
  std::ifstream in(ckpt + "/state.json");
  if (!in) return 0;
  const auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  return j.is_object() && j.contains("step") && j["step"].is_number_integer() ? j["step"].get<int64_t>() : 0;
}

std::string metrics_path(const std::string& ckpt) { return run_folder_of(ckpt) + "/metrics.jsonl"; }

// The per-expert gradient norms of the metrics log's evaluation records (absent in runs older than them).
std::optional<GradNormCourse> read_grad_norms(const std::string& path, int64_t n_layers) {
  std::ifstream in(path);
  GradNormCourse c;
  c.norms.resize(n_layers);
  int64_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() && in.eof()) break;  // a last line cut short by a hard kill
    if (j.is_discarded()) throw_error(path, " line ", line_no, ": expected one JSON object");
    if (!j.is_object() || j.value("type", "") != "eval" || !j.contains("expert_grad_norm")) continue;
    const auto& layers = j["expert_grad_norm"];
    if (!layers.is_array() || static_cast<int64_t>(layers.size()) != n_layers)
      throw_error(path, " line ", line_no, ": expert_grad_norm has ", layers.size(), " layers, expected ", n_layers);
    c.steps.push_back(j.value("step", int64_t{0}));
    for (int64_t l = 0; l < n_layers; ++l) c.norms[l].push_back(layers[l].at("norms").get<std::vector<double>>());
  }
  if (c.steps.empty()) return std::nullopt;
  return c;
}

// The prompt tokenised as a trace source, with each token's text (its byte range in the prompt) for display; a
// document's beginning id first where the tokenizer's convention has one, shown as its piece ("<s>").
data::TokenStream prompt_source(const data::Tokenizer& tokenizer, const std::string& prompt,
                                std::vector<std::string>& pieces) {
  std::vector<data::TokenSpan> spans;
  tokenizer.encode(prompt, spans);
  data::TokenStream s;
  s.description = "prompt";
  s.eod_id = tokenizer.eod_id();
  if (!spans.empty() && tokenizer.convention().bos_before) {
    s.tokens.push_back(tokenizer.bos_id());
    pieces.push_back(tokenizer.piece(tokenizer.bos_id()));
  }
  for (const auto& sp : spans) {
    s.tokens.push_back(sp.id);
    pieces.push_back(prompt.substr(sp.begin, sp.end - sp.begin));
  }
  if (s.tokens.empty()) throw_error("--prompt: the prompt has no tokens");
  return s;
}

}  // namespace

CheckpointAnalysis analyze_checkpoint(const std::string& checkpoint, const AnalysisOptions& options,
                                      StageProgress& progress) {
  CheckpointAnalysis a;
  StageClock clock(a.timings);
  ModelSource opened = open_model_source(checkpoint, options.data_dir);
  opened.set_window(options.seq_len);
  const Config& cfg = opened.config;
  Model& model = *opened.model;
  a.checkpoint = opened.path;
  a.hf_model_type = opened.hf_model_type;
  a.config = config_to_json(cfg);
  a.step = checkpoint_step(a.checkpoint);
  const auto weights = moe_expert_weights(model);
  if (weights.empty()) throw_error("checkpoint ", a.checkpoint, ": the model has no MoE layer to analyse");
  const int64_t L = static_cast<int64_t>(weights.size()), E = cfg.moe.n_experts;
  a.n_experts = E, a.top_k = cfg.routing.top_k;

  // The routing trace of the evaluation tokens, with the layer inputs of the first sample_tokens.
  const data::TokenStream source = options.text_file.empty()
                                       ? opened.split_stream(options.split, options.max_tokens)
                                       : opened.text_stream(options.text_file, options.max_tokens);
  clock.start("trace");
  progress.stage("tracing " + source.description, static_cast<int64_t>(source.tokens.size()));
  const RoutingTrace trace =
      collect_trace(model, source, {cfg.train.seq_len, cfg.train.batch_size, false, options.sample_tokens},
                    [&](int64_t done, int64_t) { progress.update(done); });
  const int64_t N = trace.n_tokens, K = trace.max_slots, S = trace.sample_tokens, d = trace.d_model;
  a.source = source.description, a.tokens = N;
  a.labels = trace.channels;
  const int64_t C = static_cast<int64_t>(a.labels.size());
  double loss_sum = 0;
  int64_t loss_count = 0;
  for (float l : trace.loss)
    if (std::isfinite(l)) loss_sum += l, ++loss_count;
  a.mean_loss = loss_count ? loss_sum / loss_count : std::nan("");
  // trace.loss[t] predicts token t + 1, whose class is the target's.
  for (int64_t c = 0; c < C; ++c) {
    ClassLossTally tally(a.labels[c]);
    for (int64_t t = 0; t + 1 < N; ++t)
      if (std::isfinite(trace.loss[t])) tally.add(trace.labels[c][t + 1], trace.loss[t]);
    a.loss_by_label.push_back(tally.result());
  }

  // The prompt's chosen experts and gate activations.
  const data::TokenStream prompt = prompt_source(opened.tokenizer, options.prompt, a.prompt_tokens);
  const int64_t P = static_cast<int64_t>(prompt.tokens.size());
  const RoutingTrace prompt_trace = collect_trace(model, prompt, {cfg.train.seq_len, 1, false, P}, {});

  // Labels move by whole evaluation windows (the unit sequence-level routing decides for) or by token.
  const int64_t block = options.shuffle_windows ? cfg.train.seq_len : 1;
  a.layers.resize(L);
  clock.start("routing statistics and specialisation");
  progress.stage("routing statistics and specialisation", L);
  for (int64_t l = 0; l < L; ++l) {
    LayerAnalysis& la = a.layers[l];
    la.layer = trace.layers[l];
    const int16_t* experts = trace.experts.data() + l * N * K;    // [N,K]
    const uint8_t* n_selected = trace.n_selected.data() + l * N;  // [N]
    la.experts_per_token = experts_per_token(n_selected, N, E);
    la.expert_slots.assign(E, 0);
    for (int64_t i = 0; i < N * K; ++i)
      if (experts[i] >= 0) ++la.expert_slots[experts[i]];
    la.by_loss = experts_by_loss_quantile(n_selected, trace.loss.data(), N, options.loss_quantiles);
    for (int64_t c = 0; c < C; ++c) {
      const uint8_t* labels = trace.labels[c].data();  // [N]
      const auto& classes = a.labels[c].classes;
      // Each channel its own permutation stream, so adding a channel leaves the others' baselines as they were.
      la.by_label.push_back({experts_by_label(n_selected, labels, N, classes),
                             specialisation(experts, N, K, E, labels, static_cast<int64_t>(classes.size()),
                                            options.permutations, options.seed + static_cast<uint64_t>(c), block)});
    }
    const int64_t PK = prompt_trace.max_slots;
    la.prompt_choices.resize(P);
    for (int64_t t = 0; t < P; ++t)
      for (int64_t k = 0; k < PK; ++k) {
        const int64_t slot = (l * P + t) * PK + k;
        if (prompt_trace.experts[slot] >= 0)
          la.prompt_choices[t].emplace_back(prompt_trace.experts[slot], prompt_trace.weights[slot]);
      }
    progress.update(l + 1);
  }

  clock.start("static expert analysis");
  progress.stage("static expert analysis (weights, neuron matching, PCA)", L);
  for (int64_t l = 0; l < L; ++l) {
    a.layers[l].statics = analyze_static(weights[l], options.static_options);
    a.layers[l].health = expert_health(weights[l], a.layers[l].expert_slots.data(), options.health_options);
    progress.update(l + 1);
  }

  clock.start("dynamic expert analysis");
  progress.stage("dynamic expert analysis (every expert on " + std::to_string(S) + " tokens)", L);
  for (int64_t l = 0; l < L; ++l) {
    const float* scores = trace.sample_probs.empty() ? nullptr : trace.sample_probs.data() + l * S * E;
    a.layers[l].dynamics = analyze_dynamic(weights[l], trace.sample_input.data() + l * S * d, scores, S);
    const float* prompt_scores =
        prompt_trace.sample_probs.empty() ? nullptr : prompt_trace.sample_probs.data() + l * P * E;
    const DynamicLayerAnalysis on_prompt =
        analyze_dynamic(weights[l], prompt_trace.sample_input.data() + l * P * d, prompt_scores, P, P);
    a.layers[l].prompt_gate_activation = on_prompt.gate_activation_tokens;
    progress.update(l + 1);
  }
  clock.stop();

  // Active parameters with each layer's measured experts per token: the non-expert part, plus each MoE layer's
  // share of one expert's parameters times its mean.
  const ParamCount none = count_params(cfg, 0), one = count_params(cfg, 1);
  const double per_expert_per_layer = static_cast<double>(one.active - none.active) / L;
  a.active_params = static_cast<double>(none.active);
  for (const auto& la : a.layers) a.active_params += la.experts_per_token.mean * per_expert_per_layer;
  a.active_params_topk = count_params(cfg, std::min<int64_t>(cfg.routing.top_k, E)).active;

  const std::string metrics = metrics_path(a.checkpoint);
  if (!opened.is_hf() && fs::exists(metrics)) {  // a Hugging Face folder has no training log
    a.course = read_training_course(metrics);
    a.grad_norms = read_grad_norms(metrics, L);
  }
  return a;
}

nlohmann::json to_json(const CheckpointAnalysis& a) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& la : a.layers) {
    nlohmann::json prompt = nlohmann::json::array();
    for (const auto& choices : la.prompt_choices) {
      nlohmann::json slots = nlohmann::json::array();
      for (const auto& [e, w] : choices) slots.push_back({{"expert", e}, {"weight", w}});
      prompt.push_back(slots);
    }
    nlohmann::json by_label = nlohmann::json::object();
    for (size_t c = 0; c < la.by_label.size(); ++c)
      by_label[a.labels[c].name] = {{"experts_per_class", to_json(la.by_label[c].experts_per_class)},
                                    {"specialisation", to_json(la.by_label[c].specialisation)}};
    layers.push_back({{"layer", la.layer},
                      {"experts_per_token", to_json(la.experts_per_token)},
                      {"expert_slots", la.expert_slots},
                      {"experts_by_loss_quantile", to_json(la.by_loss)},
                      {"by_label", by_label},
                      {"static", to_json(la.statics)},
                      {"dynamic", to_json(la.dynamics)},
                      {"health", to_json(la.health)},
                      {"prompt_choices", prompt},
                      {"prompt_gate_activation", la.prompt_gate_activation}});
  }
  nlohmann::json grad = nullptr;
  if (a.grad_norms) grad = {{"steps", a.grad_norms->steps}, {"norms", a.grad_norms->norms}};
  nlohmann::json timings = nlohmann::json::object();
  for (const auto& [name, s] : a.timings) timings[name] = s;
  nlohmann::json labels = nlohmann::json::array(), loss_by_label = nlohmann::json::object();
  for (size_t c = 0; c < a.labels.size(); ++c) {
    labels.push_back(
        {{"name", a.labels[c].name}, {"per", data::scope_name(a.labels[c].scope)}, {"classes", a.labels[c].classes}});
    loss_by_label[a.labels[c].name] = to_json(a.loss_by_label[c]);
  }
  return {{"format", "moelab-analysis"},
          {"format_version", 2},
          {"checkpoint", a.checkpoint},
          {"hf_model_type", a.hf_model_type},
          {"step", a.step},
          {"config", a.config},
          {"source", a.source},
          {"tokens", a.tokens},
          {"mean_loss", a.mean_loss},
          {"experts", a.n_experts},
          {"top_k", a.top_k},
          {"labels", labels},
          {"loss_by_label", loss_by_label},
          {"active_params", a.active_params},
          {"active_params_topk", a.active_params_topk},
          {"active_vs_topk", a.active_params / static_cast<double>(a.active_params_topk)},
          {"prompt_tokens", a.prompt_tokens},
          {"training_course", a.course ? to_json(*a.course) : nlohmann::json()},
          {"expert_grad_norms", grad},
          {"seconds", timings},
          {"layers", layers}};
}

}  // namespace moelab::analysis
