// End-to-end training and inference throughput of the whole model on the peer's two shapes (random tokens: the
// cost of a step does not depend on the data). Reports tokens/s and achieved GFLOP/s in model FLOPs, counted as
// the PyTorch peer counts them (src/model/model_flops.h).
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "core/rng.h"
#include "model/model.h"
#include "model/model_flops.h"
#include "rate_counters.h"

namespace {

using moelab::Config;

struct Shape {
  int64_t d, layers, heads, experts, hidden, seq, batch;
};

Config config_for(const Shape& s) {
  Config cfg;
  cfg.model.vocab_size = 8192;
  cfg.model.d_model = s.d, cfg.model.n_layers = s.layers, cfg.model.n_heads = s.heads;
  cfg.model.max_seq_len = s.seq;
  cfg.moe.n_experts = s.experts, cfg.moe.expert_hidden = s.hidden;
  cfg.train.seq_len = s.seq, cfg.train.batch_size = s.batch;
  return cfg;
}

// routing.rule / granularity variants of the small shape, for the cost of the routing designs themselves.
struct Routing {
  moelab::SelectionRule rule = moelab::SelectionRule::TopK;
  double top_p = 0.4;
  moelab::Granularity granularity = moelab::Granularity::Token;
};

void run(benchmark::State& state, const Shape& shape, bool training, const Routing& routing = {}) {
  Config cfg = config_for(shape);
  cfg.routing.rule = routing.rule, cfg.routing.top_p = routing.top_p, cfg.routing.granularity = routing.granularity;
  moelab::Model model(cfg);
  model.init_params(1);
  const int64_t B = shape.batch, T = shape.seq, N = B * T;
  std::vector<int32_t> inputs(N), targets(N);
  moelab::Rng rng(3, 0);
  for (int64_t i = 0; i < N; ++i) inputs[i] = rng.below(8192), targets[i] = rng.below(8192);
  double slots = 0, tokens = 0;
  for (auto _ : state) {
    model.forward(inputs.data(), training ? targets.data() : nullptr, B, T);
    if (training) model.backward(1.0);
    benchmark::ClobberMemory();
    for (const auto& r : model.layer_routing())  // per token: sequence plans count once per sequence of T tokens
      slots += static_cast<double>(r.plan->n_slots()), tokens += static_cast<double>(r.plan->n_tokens);
  }
  state.counters["experts/token"] = tokens > 0 ? slots / tokens : 0.0;
  const double flops_per_token = moelab::model_flops_per_token(cfg, T, training);
  state.counters["tokens/s"] = benchmark::Counter(N, benchmark::Counter::kIsIterationInvariantRate);
  moelab::bench::set_flops(state, N * flops_per_token);
}

const Shape kSmall{256, 4, 4, 8, 704, 256, 8};
const Shape kLarge{512, 8, 8, 16, 1408, 512, 4};

void BM_TrainStepSmall(benchmark::State& s) { run(s, kSmall, true); }
// At initialisation the router's probabilities over 8 experts are close to 1/8 each, and top-p with p = 0.3 keeps
// about two experts per token (2.04 measured), like top-2: the difference in step time is the cost of the rule.
void BM_TrainStepSmallTopP(benchmark::State& s) {
  run(s, kSmall, true, {.rule = moelab::SelectionRule::TopP, .top_p = 0.3});
}
void BM_TrainStepSmallSequence(benchmark::State& s) {
  run(s, kSmall, true, {.granularity = moelab::Granularity::Sequence});
}
void BM_TrainStepLarge(benchmark::State& s) { run(s, kLarge, true); }
void BM_ForwardSmall(benchmark::State& s) { run(s, kSmall, false); }
void BM_ForwardLarge(benchmark::State& s) { run(s, kLarge, false); }

BENCHMARK(BM_TrainStepSmall)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);
BENCHMARK(BM_TrainStepSmallTopP)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);
BENCHMARK(BM_TrainStepSmallSequence)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);
BENCHMARK(BM_ForwardSmall)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_TrainStepLarge)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);
BENCHMARK(BM_ForwardLarge)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

}  // namespace
