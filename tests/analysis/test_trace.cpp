// Routing traces: collect_trace against facts computed independently of it (a forward of each window on its own,
// the targets rebuilt from the stream), and write_trace read back by NumPy (Debian's python3-numpy, which the test
// command installs: without it that test fails, it is not skipped).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "analysis/trace.h"
#include "model/config.h"
#include "model/model.h"
#include "support/errors.h"
#include "support/temp_dir.h"

namespace moelab::analysis {
namespace {

using testing::TempDir;

constexpr int64_t kVocab = 50, kT = 8;

// A tiny model (d 16, 2 MoE layers, 4 experts) with decisive routers, so that float noise never flips a choice.
std::unique_ptr<Model> tiny_model(const std::string& granularity, const std::string& rule = "top_k",
                                  const std::string& router = "learned") {
  Config cfg;
  cfg.model.vocab_size = kVocab, cfg.model.d_model = 16, cfg.model.n_layers = 2, cfg.model.n_heads = 2;
  cfg.moe.n_experts = 4, cfg.moe.expert_hidden = 8;
  cfg.routing.top_k = 2;
  cfg.routing.granularity = parse_design<Granularity>(granularity, "granularity");
  cfg.routing.rule = parse_design<SelectionRule>(rule, "rule");
  cfg.routing.router = parse_design<RouterKind>(router, "router");
  cfg.routing.top_p = 0.7;
  validate(cfg);
  auto m = std::make_unique<Model>(cfg);
  m->init_params(5);
  const float scale = rule == "top_p" ? 8.0f : 50.0f;  // top-p: spread enough that tokens keep 1..4 experts
  for (const auto& spec : m->table().specs())
    if (spec.group == ParamGroup::Router)
      for (int64_t i = 0; i < spec.numel; ++i) m->mutable_params()[spec.offset + i] *= scale;
  return m;
}

// 37 tokens (4 whole windows of 8 and one of 5), labelled.
data::TokenStream labelled_source() {
  data::TokenStream s;
  s.description = "synthetic";
  s.channels = {{"pos", data::LabelScope::word, {"NOUN", "VERB", "ADJ"}},
                {"genre", data::LabelScope::document, {"news", "fiction"}}};
  s.labels.resize(2);
  for (int64_t i = 0; i < 37; ++i) {
    s.tokens.push_back(static_cast<int32_t>(1 + (i * 17 + i * i) % (kVocab - 1)));
    s.labels[0].push_back(i % 7 == 6 ? 255 : static_cast<uint8_t>(i % 3));
    s.labels[1].push_back(static_cast<uint8_t>(i / 20));
  }
  return s;
}

// Forwards each window of the source alone (B = 1) and checks every recorded token of it against that forward.
void expect_matches_window_forwards(Model& m, const data::TokenStream& src, const RoutingTrace& tr) {
  const int64_t n = static_cast<int64_t>(src.tokens.size()), L = static_cast<int64_t>(tr.layers.size());
  const int64_t K = tr.max_slots, E = tr.n_experts, d = tr.d_model, S = tr.sample_tokens;
  const bool sequence = m.config().routing.granularity == Granularity::Sequence;
  for (int64_t w = 0; w * kT < n; ++w) {
    std::vector<int32_t> in(kT, src.eod_id), tgt(kT, -1);  // [1,T]
    for (int64_t t = 0; t < kT && w * kT + t < n; ++t) {
      in[t] = src.tokens[w * kT + t];
      if (w * kT + t + 1 < n) tgt[t] = src.tokens[w * kT + t + 1];
    }
    m.forward(in.data(), tgt.data(), 1, kT);
    const auto routing = m.layer_routing();
    ASSERT_EQ(static_cast<int64_t>(routing.size()), L);
    for (int64_t t = 0; t < kT && w * kT + t < n; ++t) {
      const int64_t g = w * kT + t;
      EXPECT_EQ(tr.position[g], t);
      EXPECT_EQ(tr.token_id[g], src.tokens[g]);
      if (tgt[t] < 0)
        EXPECT_TRUE(std::isnan(tr.loss[g])) << g;
      else
        EXPECT_NEAR(tr.loss[g], m.row_losses()[t], 1e-4) << g;
      for (int64_t l = 0; l < L; ++l) {
        const auto& plan = *routing[l].token_plan;
        const int32_t s0 = plan.token_offsets[t], s1 = plan.token_offsets[t + 1];
        ASSERT_EQ(tr.n_selected[l * n + g], s1 - s0) << "layer " << l << " token " << g;
        for (int64_t k = 0; k < K; ++k) {
          const int64_t at = (l * n + g) * K + k;
          if (k < s1 - s0) {
            EXPECT_EQ(tr.experts[at], plan.slot_expert[s0 + k]) << "layer " << l << " token " << g << " slot " << k;
            EXPECT_NEAR(tr.weights[at], plan.slot_weight[s0 + k], 1e-5);
          } else {
            EXPECT_EQ(tr.experts[at], -1);
            EXPECT_EQ(tr.weights[at], 0.0f);
          }
        }
        const float* probs = routing[l].probs ? routing[l].probs + (sequence ? 0 : t) * E : nullptr;  // [E]
        if (!tr.probs.empty()) {
          for (int64_t e = 0; e < E; ++e) EXPECT_NEAR(tr.probs[(l * n + g) * E + e], probs[e], 1e-5);
        }
        if (g < S) {
          for (int64_t j = 0; j < d; ++j)
            EXPECT_NEAR(tr.sample_input[(l * S + g) * d + j], routing[l].ffn_input[t * d + j], 1e-5);
          if (probs) {
            for (int64_t e = 0; e < E; ++e) EXPECT_NEAR(tr.sample_probs[(l * S + g) * E + e], probs[e], 1e-5);
          }
        }
      }
    }
  }
}

TEST(Trace, TopKMatchesAForwardOfEachWindow) {
  auto m = tiny_model("token");
  const data::TokenStream src = labelled_source();
  std::vector<std::pair<int64_t, int64_t>> progress;
  const RoutingTrace tr = collect_trace(*m, src, {kT, 2, true, 11},
                                        [&](int64_t done, int64_t total) { progress.emplace_back(done, total); });
  const int64_t n = 37, L = 2, E = 4;
  ASSERT_EQ(tr.n_tokens, n);  // the padding of the last window is not recorded
  EXPECT_EQ(tr.n_experts, E);
  EXPECT_EQ(tr.d_model, 16);
  EXPECT_EQ(tr.layers, (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(tr.max_slots, 2);
  ASSERT_EQ(tr.experts.size(), static_cast<size_t>(L * n * 2));
  ASSERT_EQ(tr.probs.size(), static_cast<size_t>(L * n * E));
  EXPECT_EQ(tr.sample_tokens, 11);
  ASSERT_EQ(tr.sample_input.size(), static_cast<size_t>(L * 11 * 16));
  ASSERT_EQ(tr.sample_probs.size(), static_cast<size_t>(L * 11 * E));
  for (uint8_t k : tr.n_selected) EXPECT_EQ(k, 2);
  for (int64_t r = 0; r < L * n; ++r) {
    double sum = 0;
    for (int64_t e = 0; e < E; ++e) sum += tr.probs[r * E + e];
    EXPECT_NEAR(sum, 1.0, 1e-5) << r;
    EXPECT_NE(tr.experts[r * 2], tr.experts[r * 2 + 1]) << r;
    EXPECT_NEAR(tr.weights[r * 2] + tr.weights[r * 2 + 1], 1.0, 1e-5) << r;  // renormalised top-2
  }
  for (int64_t g = 0; g + 1 < n; ++g) EXPECT_FALSE(std::isnan(tr.loss[g])) << g;
  EXPECT_TRUE(std::isnan(tr.loss[n - 1]));
  EXPECT_EQ(tr.labels, src.labels);
  ASSERT_EQ(tr.channels.size(), 2u);
  EXPECT_EQ(tr.channels[0].name, "pos");
  EXPECT_EQ(tr.channels[1].classes, src.channels[1].classes);
  EXPECT_EQ(progress, (std::vector<std::pair<int64_t, int64_t>>{{16, n}, {32, n}, {37, n}}));
  expect_matches_window_forwards(*m, src, tr);
}

TEST(Trace, SequenceGranularityGivesAWindowOneExpertSet) {
  auto m = tiny_model("sequence");
  const data::TokenStream src = labelled_source();
  const RoutingTrace tr = collect_trace(*m, src, {kT, 3, true, 0}, {});
  const int64_t n = tr.n_tokens, K = tr.max_slots, E = tr.n_experts;
  EXPECT_EQ(K, 2);
  EXPECT_TRUE(tr.sample_input.empty());
  int differ = 0;  // windows whose set differs from window 0's: the router does see the sequence
  for (int64_t l = 0; l < 2; ++l)
    for (int64_t g = 0; g < n; ++g) {
      const int64_t first = g - g % kT;  // first token of g's window
      for (int64_t k = 0; k < K; ++k) {
        EXPECT_EQ(tr.experts[(l * n + g) * K + k], tr.experts[(l * n + first) * K + k]) << "layer " << l << " " << g;
        EXPECT_EQ(tr.weights[(l * n + g) * K + k], tr.weights[(l * n + first) * K + k]);
        differ += g == first && tr.experts[(l * n + g) * K + k] != tr.experts[l * n * K + k];
      }
      for (int64_t e = 0; e < E; ++e) EXPECT_EQ(tr.probs[(l * n + g) * E + e], tr.probs[(l * n + first) * E + e]);
    }
  EXPECT_GT(differ, 0);
  expect_matches_window_forwards(*m, src, tr);
}

TEST(Trace, TopPPadsTokensThatUseFewerExperts) {
  auto m = tiny_model("token", "top_p");
  const data::TokenStream src = labelled_source();
  const RoutingTrace tr = collect_trace(*m, src, {kT, 2, true, 0}, {});
  const int64_t n = tr.n_tokens, K = tr.max_slots;
  const uint8_t lo = *std::min_element(tr.n_selected.begin(), tr.n_selected.end());
  const uint8_t hi = *std::max_element(tr.n_selected.begin(), tr.n_selected.end());
  EXPECT_EQ(hi, K);  // K is the most any token used
  EXPECT_LT(lo, hi) << "the test needs tokens with different expert counts";
  for (int64_t r = 0; r < 2 * n; ++r)
    for (int64_t k = 0; k < K; ++k) {
      const int16_t e = tr.experts[r * K + k];
      if (k < tr.n_selected[r]) {
        ASSERT_GE(e, 0);
        EXPECT_EQ(tr.weights[r * K + k], tr.probs[r * 4 + e]);  // top-p combines with the raw probabilities
      }
    }
  expect_matches_window_forwards(*m, src, tr);
}

TEST(Trace, HashRouterHasExpertsButNoProbabilities) {
  auto m = tiny_model("token", "top_k", "hash");
  const data::TokenStream src = labelled_source();
  const RoutingTrace tr = collect_trace(*m, src, {kT, 4, true, 5}, {});
  EXPECT_TRUE(tr.probs.empty());
  EXPECT_TRUE(tr.sample_probs.empty());
  EXPECT_EQ(tr.sample_input.size(), 2u * 5 * 16);
  EXPECT_EQ(tr.max_slots, 2);
  // A hash router routes by token id: equal ids, equal experts.
  const int64_t n = tr.n_tokens;
  for (int64_t a = 0; a < n; ++a)
    for (int64_t b = 0; b < n; ++b)
      if (tr.token_id[a] == tr.token_id[b]) {
        for (int64_t l = 0; l < 2; ++l) EXPECT_EQ(tr.experts[(l * n + a) * 2], tr.experts[(l * n + b) * 2]);
      }
  expect_matches_window_forwards(*m, src, tr);
}

TEST(Trace, RejectsEmptySourcesAndIdsOutsideTheVocabulary) {
  auto m = tiny_model("token");
  data::TokenStream src = labelled_source();
  src.tokens[9] = kVocab;
  src.description = "text file x.txt";
  const std::string msg = testing::error_of([&] { collect_trace(*m, src, {kT, 2}, {}); });
  EXPECT_CONTAINS(msg, "text file x.txt");
  EXPECT_CONTAINS(msg, "token 9");
  data::TokenStream empty;
  empty.description = "text file empty.txt";
  EXPECT_CONTAINS(testing::error_of([&] { collect_trace(*m, empty, {kT, 2}, {}); }), "empty.txt: no tokens");
}

// Runs a Python script with Debian's python3 (where python3-numpy lives); returns its output, failing the test on
// a non-zero exit.
std::string run_python(const std::string& script_path) {
  FILE* pipe = ::popen(("/usr/bin/python3 " + script_path + " 2>&1").c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  if (pipe == nullptr) return "";
  std::string out;
  char buf[4096];
  for (size_t k; (k = std::fread(buf, 1, sizeof buf, pipe)) > 0;) out.append(buf, k);
  EXPECT_EQ(::pclose(pipe), 0) << "python3 failed (is python3-numpy installed?):\n" << out;
  return out;
}

std::string sci(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9e", x);
  return buf;
}

TEST(Trace, WrittenTraceLoadsInNumpy) {
  auto m = tiny_model("token");
  const data::TokenStream src = labelled_source();
  const RoutingTrace tr = collect_trace(*m, src, {kT, 2, true, 3}, {});
  TempDir dir;
  const std::string out = dir.file("trace");
  write_trace(out, tr, {{"checkpoint", "runs/x/checkpoints/step-00000010"}, {"source", src.description}});
  for (const char* f : {"trace.json", "experts.npy", "weights.npy", "n_selected.npy", "token_id.npy", "position.npy",
                        "loss.npy", "label_pos.npy", "label_genre.npy", "probs.npy"})
    EXPECT_TRUE(std::filesystem::exists(out + "/" + f)) << f;
  EXPECT_FALSE(std::filesystem::exists(out + "/sample_input.npy"));

  const std::string script = dir.file("check.py");
  testing::write_all(script, R"(import json, sys, os, numpy as np
d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), 'trace')
idx = json.load(open(os.path.join(d, 'trace.json')))
a = {k: np.load(os.path.join(d, v['file'])) for k, v in idx['arrays'].items()}
for k, v in idx['arrays'].items():
    assert list(a[k].shape) == v['shape'] and a[k].dtype == np.dtype(v['dtype']) and len(v['axes']) == a[k].ndim, k
print(idx['format'], idx['n_tokens'], idx['max_slots'], idx['layers'], idx['checkpoint'], idx['source'])
print(sorted(a), a['experts'].shape, a['probs'].shape)
print(a['experts'][1, 5].tolist(), '%.9e' % a['weights'][1, 5, 0], a['n_selected'][0, 36], a['token_id'][:3].tolist())
print(a['position'][8:10].tolist(), np.isnan(a['loss'][-1]), '%.9e' % a['loss'][0], a['label_pos'][6],
      a['label_genre'][36])
print('%.9e' % a['probs'][0, 2, 3], [(c['name'], c['per'], c['classes'], c['array']) for c in idx['labels']])
)");
  const int64_t n = tr.n_tokens, K = tr.max_slots;
  auto at = [&](int64_t l, int64_t g, int64_t k) { return (l * n + g) * K + k; };
  const std::string expect =
      "moelab-trace 37 2 [0, 1] runs/x/checkpoints/step-00000010 synthetic\n"
      "['experts', 'label_genre', 'label_pos', 'loss', 'n_selected', 'position', 'probs', 'token_id', 'weights'] "
      "(2, 37, 2) (2, 37, 4)\n"
      "[" +
      std::to_string(tr.experts[at(1, 5, 0)]) + ", " + std::to_string(tr.experts[at(1, 5, 1)]) + "] " +
      sci(tr.weights[at(1, 5, 0)]) + " 2 [" + std::to_string(src.tokens[0]) + ", " + std::to_string(src.tokens[1]) +
      ", " + std::to_string(src.tokens[2]) +
      "]\n"
      "[0, 1] True " +
      sci(tr.loss[0]) + " 255 1\n" + sci(tr.probs[(0 * n + 2) * 4 + 3]) +
      " [('pos', 'word', ['NOUN', 'VERB', 'ADJ'], 'label_pos'), ('genre', 'document', ['news', 'fiction'], "
      "'label_genre')]\n";
  EXPECT_EQ(run_python(script), expect);

  // A second trace without labels or probabilities into the same folder leaves no stale arrays behind.
  data::TokenStream bare = src;
  bare.channels.clear(), bare.labels.clear();
  write_trace(out, collect_trace(*m, bare, {kT, 2}, {}), nlohmann::json::object());
  for (const char* f : {"label_pos.npy", "label_genre.npy", "probs.npy"})
    EXPECT_FALSE(std::filesystem::exists(out + "/" + f)) << f;
  EXPECT_TRUE(std::filesystem::exists(out + "/experts.npy"));
}

}  // namespace
}  // namespace moelab::analysis
