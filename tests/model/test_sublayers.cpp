// The model's sublayers (SwiGLU MLP, attention block, MoE FFN) composed from the ops: every gradient by finite
// differences in double precision, so a wrong wiring between ops (a missing branch, a swapped buffer) fails here
// before the whole-model oracle test has to find it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <ostream>
#include <string>
#include <vector>

#include "backend/cpu/compute_context.h"
#include "backend/cpu/gemm_bf16.h"
#include "model/attention_block.h"
#include "model/moe_ffn.h"
#include "model/swiglu_mlp.h"
#include "support/gradcheck.h"

namespace moelab {
namespace {

using testing::dot;
using testing::expect_gradient_matches;
using testing::random_vector;

const cpu::ComputeContext kF32;  // f32 products, no copies of the weights

TEST(SwigluMlp, GradientsMatchFiniteDifferences) {
  const int64_t n = 5, d = 6, h = 7;
  auto x = random_vector(n * d, 1), gate = random_vector(h * d, 2), up = random_vector(h * d, 3),
       down = random_vector(d * h, 4), r = random_vector(n * d, 5);
  std::vector<double> out(n * d), g(n * h), u(n * h), act(n * h);
  auto weights = [&] { return SwigluMlpWeights<double>{gate.data(), up.data(), down.data()}; };
  auto loss = [&] {
    swiglu_mlp_forward(kF32, out.data(), g.data(), u.data(), act.data(), x.data(), weights(), n, d, h);
    return dot(out, r);
  };
  loss();
  std::vector<double> d_x(n * d), d_gate(h * d, 0.0), d_up(h * d, 0.0), d_down(d * h, 0.0), s1(n * h), s2(n * h),
      s3(n * h);
  swiglu_mlp_backward(kF32, d_x.data(), SwigluMlpGrads<double>{d_gate.data(), d_up.data(), d_down.data()},
                      {s1.data(), s2.data(), s3.data()}, r.data(), {x.data(), g.data(), u.data(), act.data()},
                      weights(), {n, d, h});
  expect_gradient_matches("d_x", x, d_x, loss);
  expect_gradient_matches("d_gate", gate, d_gate, loss);
  expect_gradient_matches("d_up", up, d_up, loss);
  expect_gradient_matches("d_down", down, d_down, loss);
}

// Staged weight gradients (made in scratch rows first: the bf16 expert backward) are the unstaged ones: added to
// what grads held, or written over it when grads are declared 0. Both are one add per element in double, so the
// same bits.
TEST(SwigluMlp, StagedWeightGradientsAreTheUnstagedOnes) {
  const int64_t n = 5, d = 6, h = 7;
  auto x = random_vector(n * d, 1), gate = random_vector(h * d, 2), up = random_vector(h * d, 3),
       down = random_vector(d * h, 4), r = random_vector(n * d, 5);
  std::vector<double> out(n * d), g(n * h), u(n * h), act(n * h);
  const SwigluMlpWeights<double> w{gate.data(), up.data(), down.data()};
  swiglu_mlp_forward(kF32, out.data(), g.data(), u.data(), act.data(), x.data(), w, n, d, h);
  struct Grads {
    std::vector<double> gate, up, down, d_x;
  };
  const auto start = random_vector(h * d, 6);  // what the gradients held before, for the added case
  auto run = [&](const std::vector<double>& held, SwigluGradStaging<double> staging) {
    Grads gr{held, held, held, std::vector<double>(n * d)};
    std::vector<double> s1(n * h), s2(n * h), s3(n * h);
    swiglu_mlp_backward(kF32, gr.d_x.data(), SwigluMlpGrads<double>{gr.gate.data(), gr.up.data(), gr.down.data()},
                        {s1.data(), s2.data(), s3.data()}, r.data(), {x.data(), g.data(), u.data(), act.data()}, w,
                        {n, d, h}, staging);
    return gr;
  };
  std::vector<double> rows(h * d, std::nan(""));  // overwritten before every read
  const Grads added = run(start, {}), staged_added = run(start, {rows.data(), false});
  EXPECT_EQ(staged_added.gate, added.gate);
  EXPECT_EQ(staged_added.up, added.up);
  EXPECT_EQ(staged_added.down, added.down);
  EXPECT_EQ(staged_added.d_x, added.d_x);
  const Grads from_zero = run(std::vector<double>(h * d, 0.0), {});
  const Grads written = run(start, {rows.data(), true});  // held values ignored: declared 0
  EXPECT_EQ(written.gate, from_zero.gate);
  EXPECT_EQ(written.up, from_zero.up);
  EXPECT_EQ(written.down, from_zero.down);
}

// A bf16 model's expert keeps its activation in bf16 (act_bf16): its output, input gradient, weight gradients and
// their recorded squares are the very bits of the same expert keeping act in f32, whose bf16 GEMMs round it the
// same way; on row counts with and without a partial 64-row block, with the weights in the mirror (as a model's
// forward reads them) and without.
TEST(SwigluMlp, ABf16ActivationGivesTheProductsOfTheF32One) {
  const int64_t d = 64, h = 192;
  const auto weights = testing::to_float(random_vector(3 * h * d, 2, 0.2));  // gate, up, down: [h,d], [h,d], [d,h]
  std::vector<uint16_t> weights_bf16(weights.size());
  cpu::to_bf16(weights.data(), static_cast<int64_t>(weights.size()), weights_bf16.data());
  const SwigluMlpWeights<float> w{weights.data(), weights.data() + h * d, weights.data() + 2 * h * d};
  for (int64_t n : {int64_t{37}, int64_t{128}, int64_t{150}})
    for (bool mirror : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "rows " << n << " mirror " << mirror);
      const auto x = testing::to_float(random_vector(n * d, 3)), r = testing::to_float(random_vector(n * d, 4));
      struct Result {
        std::vector<float> out, d_x, d_weights;  // d_weights: gate, up, down as in `weights`
        double norm = 0;  // of the weight gradients, from the squares recorded as they were written
      };
      const auto run = [&](bool keep_bf16) {
        Result res{std::vector<float>(n * d), std::vector<float>(n * d), std::vector<float>(3 * h * d, 0.0f)};
        std::vector<float> g(n * h), u(n * h), act(n * h), s1(n * h), s2(n * h), s3(n * h);
        std::vector<float> rows(h * d);
        std::vector<uint16_t> act_bf16(keep_bf16 ? cpu::bf16_padded_rows(n) * h : 0, uint16_t{0xffff});
        GradSquareTally tally(res.d_weights.data());
        cpu::Bf16Copies copies;
        cpu::ComputeContext ctx;
        ctx.precision = cpu::GemmPrecision::Bf16, ctx.copy_store = &copies;
        if (mirror) ctx.mirror = {weights.data(), static_cast<int64_t>(weights.size()), weights_bf16.data()};
        swiglu_mlp_forward(ctx, res.out.data(), g.data(), u.data(), act.data(), x.data(), w, n, d, h,
                           keep_bf16 ? act_bf16.data() : nullptr);
        float* dw = res.d_weights.data();
        const float* saved_act = keep_bf16 ? nullptr : act.data();  // backward reads one or the other
        swiglu_mlp_backward(ctx, res.d_x.data(), SwigluMlpGrads<float>{dw, dw + h * d, dw + 2 * h * d},
                            {s1.data(), s2.data(), s3.data()}, r.data(),
                            {x.data(), g.data(), u.data(), saved_act, keep_bf16 ? act_bf16.data() : nullptr}, w,
                            {n, d, h}, SwigluGradStaging<float>{rows.data(), true, &tally});
        EXPECT_EQ(tally.known_values(), 3 * h * d);
        res.norm = tally.norm(3 * h * d);
        return res;
      };
      const Result f32 = run(false), bf16 = run(true);
      EXPECT_EQ(bf16.out, f32.out);
      EXPECT_EQ(bf16.d_x, f32.d_x);
      EXPECT_EQ(bf16.d_weights, f32.d_weights);
      EXPECT_EQ(bf16.norm, f32.norm);
      EXPECT_GT(f32.norm, 0.0);
    }
}

// The same at the MoE layer: every expert's rows of act_bf16 start where forward and backward both expect them,
// including after an expert with no rows. Each expert of a bf16 layer gives the bits of that expert run alone with
// act kept in f32 on the layer's grouped rows: outputs, input gradients and weight gradients.
TEST(MoeFfn, Bf16ExpertsReadTheirOwnActivationRows) {
  cpu::Bf16Copies copies;
  cpu::ComputeContext bf16;
  bf16.precision = cpu::GemmPrecision::Bf16, bf16.copy_store = &copies;
  const int64_t B = 2, T = 128, N = B * T, d = 64, h = 128, E = 4;
  MoeFfnShape s{B, T, d, E, h};
  s.top_k = 1;
  // Positive inputs and router rows for experts 0-2, a negative one for expert 3: expert 3 gets no rows, the
  // others about N / 3 each, none a multiple of 64.
  std::vector<float> x = testing::to_float(random_vector(N * d, 3));
  std::vector<float> router = testing::to_float(random_vector(E * d, 4));
  for (float& v : x) v = std::abs(v);
  for (int64_t i = 0; i < E * d; ++i) router[i] = i < 3 * d ? std::abs(router[i]) : -std::abs(router[i]);
  const auto r = testing::to_float(random_vector(N * d, 5));
  const auto weights = testing::to_float(random_vector(3 * E * h * d, 6, 0.2));  // per expert: gate, up, down
  MoeFfnWeights<float> w{router.data(), {}};
  std::vector<float> grads(3 * E * h * d, 0.0f);
  MoeFfnGrads<float> g{nullptr, {}};
  for (int64_t e = 0; e < E; ++e) {
    const float* we = weights.data() + 3 * e * h * d;
    float* ge = grads.data() + 3 * e * h * d;
    w.experts.push_back({we, we + h * d, we + 2 * h * d});
    g.experts.push_back({ge, ge + h * d, ge + 2 * h * d});
  }
  MoeFfnActivations<float> act;
  MoeFfnScratch<float> sc;
  std::vector<float> out(N * d), d_x(N * d);
  moe_ffn_forward<float>(bf16, out.data(), act, sc, x.data(), nullptr, w, s, true);
  moe_ffn_backward(bf16, d_x.data(), g, sc, r.data(), x.data(), act, w, s);
  ASSERT_EQ(act.plan.expert_rows(3), 0);
  for (int64_t e = 0; e < E; ++e) {
    const int64_t r0 = act.plan.expert_offsets[e], n = act.plan.expert_rows(e);
    SCOPED_TRACE(::testing::Message() << "expert " << e << " rows " << n);
    if (e < 3) {
      EXPECT_NE(n % 64, 0);
    }
    std::vector<float> y(n * d), gg(n * h), u(n * h), a(n * h), s1(n * h), s2(n * h), s3(n * h), rows(h * d);
    std::vector<float> dx(n * d), dw(3 * h * d, 0.0f);
    swiglu_mlp_forward(bf16, y.data(), gg.data(), u.data(), a.data(), act.x_grouped.data() + r0 * d, w.experts[e], n, d,
                       h);
    swiglu_mlp_backward(bf16, dx.data(), SwigluMlpGrads<float>{dw.data(), dw.data() + h * d, dw.data() + 2 * h * d},
                        {s1.data(), s2.data(), s3.data()}, sc.d_y_grouped.data() + r0 * d,
                        {act.x_grouped.data() + r0 * d, gg.data(), u.data(), a.data()}, w.experts[e], {n, d, h},
                        SwigluGradStaging<float>{rows.data(), false, nullptr});
    EXPECT_TRUE(std::equal(y.begin(), y.end(), act.y_grouped.begin() + r0 * d));
    EXPECT_TRUE(std::equal(dx.begin(), dx.end(), sc.d_x_grouped.begin() + r0 * d));
    EXPECT_TRUE(std::equal(dw.begin(), dw.end(), grads.begin() + 3 * e * h * d));
  }
}

struct AttentionBlockCase {
  int B, T, H, Hkv, D;
  QkNorm qk_norm = QkNorm::None;
  bool qkv_bias = false;
  double clip_qkv = 0;
};
void PrintTo(const AttentionBlockCase& c, std::ostream* os) {
  *os << "B=" << c.B << " T=" << c.T << " H=" << c.H << " Hkv=" << c.Hkv << " D=" << c.D
      << " qk_norm=" << name_of(c.qk_norm) << " bias=" << c.qkv_bias << " clip=" << c.clip_qkv;
}
class AttentionBlockShapes : public ::testing::TestWithParam<AttentionBlockCase> {};

TEST_P(AttentionBlockShapes, GradientsMatchFiniteDifferences) {
  const AttentionBlockCase c = GetParam();
  const int64_t B = c.B, T = c.T, H = c.H, Hkv = c.Hkv, D = c.D, d = 8, N = B * T;
  AttentionShape s{B, T, d, H, Hkv, D, 10000.0, 1e-6};
  s.qk_norm = c.qk_norm, s.qkv_bias = c.qkv_bias, s.clip_qkv = c.clip_qkv;
  auto x = random_vector(N * d, 10), norm = random_vector(d, 11, 0.5), wq = random_vector(H * D * d, 12),
       wk = random_vector(Hkv * D * d, 13), wv = random_vector(Hkv * D * d, 14), wo = random_vector(d * H * D, 15),
       r = random_vector(N * d, 16);
  for (auto& v : norm) v += 1.0;
  // The q/k norm gains (around 1) and the biases, at their sizes (unused ones stay, never read).
  const int64_t q_gains = s.qk_norm_width(H), k_gains = s.qk_norm_width(Hkv);
  auto q_norm = random_vector(q_gains, 17, 0.5), k_norm = random_vector(k_gains, 18, 0.5);
  for (auto& v : q_norm) v += 1.0;
  for (auto& v : k_norm) v += 1.0;
  auto bq = random_vector(H * D, 19), bk = random_vector(Hkv * D, 20), bv = random_vector(Hkv * D, 21);
  std::vector<double> out(N * d);
  AttentionActivations<double> act;
  auto weights = [&] {
    AttentionWeights<double> w{norm.data(), wq.data(), wk.data(), wv.data(), wo.data()};
    if (c.qk_norm != QkNorm::None) w.q_norm = q_norm.data(), w.k_norm = k_norm.data();
    if (c.qkv_bias) w.bq = bq.data(), w.bk = bk.data(), w.bv = bv.data();
    return w;
  };
  auto loss = [&] {
    attention_block_forward(kF32, out.data(), act, x.data(), weights(), s, true);
    return dot(out, r);
  };
  loss();
  const std::vector<uint8_t> clipped = act.clipped;
  if (c.clip_qkv > 0) {  // the case must clip some values and keep others, or it tests nothing
    const auto n_clipped = std::count(clipped.begin(), clipped.end(), 1);
    EXPECT_GT(n_clipped, 0);
    EXPECT_LT(n_clipped, static_cast<int64_t>(clipped.size()) / 2);
  }
  std::vector<double> d_x(N * d), g_norm(d, 0.0), g_q(wq.size(), 0.0), g_k(wk.size(), 0.0), g_v(wv.size(), 0.0),
      g_o(wo.size(), 0.0), g_qn(q_gains, 0.0), g_kn(k_gains, 0.0), g_bq(bq.size(), 0.0), g_bk(bk.size(), 0.0),
      g_bv(bv.size(), 0.0);
  AttentionGrads<double> grads{g_norm.data(), g_q.data(), g_k.data(), g_v.data(), g_o.data()};
  if (c.qk_norm != QkNorm::None) grads.q_norm = g_qn.data(), grads.k_norm = g_kn.data();
  if (c.qkv_bias) grads.bq = g_bq.data(), grads.bk = g_bk.data(), grads.bv = g_bv.data();
  AttentionScratch<double> scratch;
  attention_block_backward(kF32, d_x.data(), grads, scratch, r.data(), x.data(), act, weights(), s);
  expect_gradient_matches("d_x", x, d_x, loss);
  expect_gradient_matches("d_norm", norm, g_norm, loss);
  expect_gradient_matches("d_wq", wq, g_q, loss);
  expect_gradient_matches("d_wk", wk, g_k, loss);
  expect_gradient_matches("d_wv", wv, g_v, loss);
  expect_gradient_matches("d_wo", wo, g_o, loss);
  if (c.qk_norm != QkNorm::None) {
    expect_gradient_matches("d_q_norm", q_norm, g_qn, loss);
    expect_gradient_matches("d_k_norm", k_norm, g_kn, loss);
  }
  if (c.qkv_bias) {
    expect_gradient_matches("d_bq", bq, g_bq, loss);
    expect_gradient_matches("d_bk", bk, g_bk, loss);
    expect_gradient_matches("d_bv", bv, g_bv, loss);
  }
  loss();
  EXPECT_EQ(act.clipped, clipped) << "a value crossed the clamp's limit during the check";
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, AttentionBlockShapes,
    ::testing::Values(AttentionBlockCase{.B = 1, .T = 1, .H = 1, .Hkv = 1, .D = 2},
                      AttentionBlockCase{.B = 2, .T = 5, .H = 2, .Hkv = 2, .D = 4},
                      AttentionBlockCase{.B = 1, .T = 7, .H = 4, .Hkv = 2, .D = 2},
                      AttentionBlockCase{.B = 2, .T = 4, .H = 4, .Hkv = 2, .D = 6, .qk_norm = QkNorm::PerHead},
                      AttentionBlockCase{
                          .B = 2, .T = 4, .H = 2, .Hkv = 1, .D = 4, .qk_norm = QkNorm::Whole, .clip_qkv = 1.2},
                      AttentionBlockCase{.B = 1, .T = 6, .H = 2, .Hkv = 2, .D = 4, .qkv_bias = true},
                      AttentionBlockCase{.B = 2, .T = 3, .H = 2, .Hkv = 1, .D = 4, .qkv_bias = true, .clip_qkv = 2.0}));

// The MoE FFN end to end: pooling, router, selection rule, plan expansion, dispatch, experts, combine and the
// three auxiliary losses, with the loss sum(out * r) + lb * LB + z * Z + ent * H. Router weights are scaled so that
// every selection keeps a margin far above the finite-difference step (a selection is piecewise constant).
struct MoeCase {
  std::string name;
  int64_t E, k;
  bool renormalize;
  SelectionRule rule;
  Granularity granularity;
  double capacity_factor = 0;
  int64_t shared_hidden = 0;
  routing::Gating gating = routing::Gating::Softmax;
  bool selection_bias = false;  // loss-free balancing: choose by biased scores
  bool shared_gate = false;     // the shared experts scaled by a sigmoid gate per token
};

void PrintTo(const MoeCase& c, std::ostream* os) { *os << c.name; }  // readable test names in ctest

class MoeFfnCases : public ::testing::TestWithParam<MoeCase> {};

TEST_P(MoeFfnCases, GradientsMatchFiniteDifferences) {
  const MoeCase c = GetParam();
  const int64_t B = 3, T = 3, N = B * T, d = 6, h = 5, E = c.E;
  MoeFfnShape s{B, T, d, E, h};
  s.rule = c.rule, s.top_k = c.k, s.renormalize = c.renormalize, s.top_p = 0.5, s.granularity = c.granularity;
  s.capacity_factor = c.capacity_factor;
  s.shared_hidden = c.shared_hidden;
  s.shared_gate = c.shared_gate;
  s.gating = c.gating;
  const MoeAuxCoefficients coef{0.3, 0.05, 0.2};
  auto x = random_vector(N * d, 20), router = random_vector(E * d, 21, 3.0), r = random_vector(N * d, 22);
  std::vector<std::vector<double>> gate, up, down;
  for (int e = 0; e < E; ++e) {
    gate.push_back(random_vector(h * d, 30 + e));
    up.push_back(random_vector(h * d, 60 + e));
    down.push_back(random_vector(d * h, 90 + e));
  }
  const int64_t hs = std::max<int64_t>(c.shared_hidden, 1);
  std::vector<double> bias(E, 0.0);
  for (int64_t e = 0; e < E; ++e) bias[e] = 0.4 * ((e * 7) % 3 - 1.0);  // large enough to change choices
  auto shared_gate = random_vector(hs * d, 120), shared_up = random_vector(hs * d, 121),
       shared_down = random_vector(d * hs, 122), shared_gate_w = random_vector(d, 123);
  auto weights = [&] {
    MoeFfnWeights<double> w{router.data(), {}, {shared_gate.data(), shared_up.data(), shared_down.data()}};
    if (c.selection_bias) w.selection_bias = bias.data();
    if (c.shared_gate) w.shared_gate = shared_gate_w.data();
    for (int e = 0; e < E; ++e) w.experts.push_back({gate[e].data(), up[e].data(), down[e].data()});
    return w;
  };
  std::vector<double> out(N * d);
  MoeFfnActivations<double> act;
  MoeFfnScratch<double> scratch;
  auto loss = [&] {
    const MoeAuxLosses aux =
        moe_ffn_forward<double>(kF32, out.data(), act, scratch, x.data(), nullptr, weights(), s, true);
    return dot(out, r) + coef.load_balance * aux.load_balance + coef.z_loss * aux.z_loss + coef.entropy * aux.entropy;
  };
  const MoeAuxLosses first =
      moe_ffn_forward<double>(kF32, out.data(), act, scratch, x.data(), nullptr, weights(), s, true);
  if (c.capacity_factor > 0 && c.rule == SelectionRule::TopK) {
    EXPECT_GT(first.dropped, 0) << "the case must exercise dropping";
  }
  const auto plan = act.plan;
  if (c.selection_bias) {  // the bias must have changed some choice, or the case tests nothing
    MoeFfnActivations<double> unbiased;
    MoeFfnWeights<double> w = weights();
    w.selection_bias = nullptr;
    std::vector<double> out2(N * d);
    moe_ffn_forward<double>(kF32, out2.data(), unbiased, scratch, x.data(), nullptr, w, s, true);
    EXPECT_NE(unbiased.plan.slot_expert, plan.slot_expert);
    for (int64_t t = 0; t < N; ++t) {  // weights are the unbiased probabilities of the chosen experts
      for (int32_t sl = plan.token_offsets[t]; sl < plan.token_offsets[t + 1]; ++sl)
        EXPECT_NEAR(plan.slot_weight[sl], act.router_probs[t * E + plan.slot_expert[sl]], 1e-12);
    }
  }
  std::vector<double> d_x(N * d), d_router(E * d, 0.0);
  std::vector<std::vector<double>> d_gate(E, std::vector<double>(h * d, 0.0)),
      d_up = d_gate, d_down(E, std::vector<double>(d * h, 0.0));
  std::vector<double> d_shared_gate(hs * d, 0.0), d_shared_up(hs * d, 0.0), d_shared_down(d * hs, 0.0),
      d_shared_gate_w(d, 0.0);
  MoeFfnGrads<double> grads{d_router.data(), {}, {d_shared_gate.data(), d_shared_up.data(), d_shared_down.data()}};
  if (c.shared_gate) grads.shared_gate = d_shared_gate_w.data();
  for (int e = 0; e < E; ++e) grads.experts.push_back({d_gate[e].data(), d_up[e].data(), d_down[e].data()});
  moe_ffn_backward(kF32, d_x.data(), grads, scratch, r.data(), x.data(), act, weights(), s, {coef});
  expect_gradient_matches("d_x", x, d_x, loss, 1e-6, 400, 1e-6);
  expect_gradient_matches("d_router", router, d_router, loss, 1e-6, 400, 1e-6);
  for (int e = 0; e < E; ++e) {
    expect_gradient_matches("d_gate", gate[e], d_gate[e], loss);
    expect_gradient_matches("d_up", up[e], d_up[e], loss);
    expect_gradient_matches("d_down", down[e], d_down[e], loss);
  }
  if (c.shared_hidden > 0) {
    expect_gradient_matches("d_shared_gate", shared_gate, d_shared_gate, loss);
    expect_gradient_matches("d_shared_up", shared_up, d_shared_up, loss);
    expect_gradient_matches("d_shared_down", shared_down, d_shared_down, loss);
  }
  if (c.shared_gate) expect_gradient_matches("d_shared_gate_w", shared_gate_w, d_shared_gate_w, loss);
  loss();
  EXPECT_EQ(act.plan.slot_expert, plan.slot_expert) << "the selection changed during the check";
  if (c.granularity == Granularity::Sequence) {  // one expert set per sequence
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 1; t < T; ++t) {
        const int64_t first = plan.token_offsets[b * T], tok = plan.token_offsets[b * T + t];
        ASSERT_EQ(plan.token_offsets[b * T + t + 1] - tok, plan.token_offsets[b * T + 1] - first);
        for (int64_t j = 0; j < plan.token_offsets[b * T + 1] - first; ++j)
          EXPECT_EQ(plan.slot_expert[tok + j], plan.slot_expert[first + j]);
      }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Routing, MoeFfnCases,
    ::testing::Values(
        MoeCase{"top2_renormalized", 4, 2, true, SelectionRule::TopK, Granularity::Token},
        MoeCase{"top2_raw", 4, 2, false, SelectionRule::TopK, Granularity::Token},
        MoeCase{"top1", 5, 1, false, SelectionRule::TopK, Granularity::Token},
        MoeCase{"all_experts", 3, 3, true, SelectionRule::TopK, Granularity::Token},
        MoeCase{"top_p", 4, 2, false, SelectionRule::TopP, Granularity::Token},
        MoeCase{"expert_choice", 4, 2, false, SelectionRule::ExpertChoice, Granularity::Token},
        MoeCase{"sequence_top2", 4, 2, true, SelectionRule::TopK, Granularity::Sequence},
        MoeCase{"sequence_top_p", 4, 2, false, SelectionRule::TopP, Granularity::Sequence},
        MoeCase{"prefix_top2", 4, 2, true, SelectionRule::TopK, Granularity::Prefix},
        MoeCase{"top2_capacity", 4, 2, false, SelectionRule::TopK, Granularity::Token, 0.6},
        MoeCase{"prefix_top1_capacity", 4, 1, false, SelectionRule::TopK, Granularity::Prefix, 0.5},
        MoeCase{"expert_choice_cf2", 4, 2, false, SelectionRule::ExpertChoice, Granularity::Token, 2.0},
        MoeCase{"top1_two_shared", 4, 1, false, SelectionRule::TopK, Granularity::Token, 0, 7},
        MoeCase{"top2_gated_shared", 4, 2, false, SelectionRule::TopK, Granularity::Token, 0, 7,
                routing::Gating::Softmax, false, true},
        MoeCase{"sigmoid_top2", 4, 2, true, SelectionRule::TopK, Granularity::Token, 0, 0, routing::Gating::Sigmoid},
        MoeCase{"sigmoid_top1_raw", 5, 1, false, SelectionRule::TopK, Granularity::Token, 0, 0,
                routing::Gating::Sigmoid},
        MoeCase{"loss_free_bias_top2_raw", 4, 2, false, SelectionRule::TopK, Granularity::Token, 0, 0,
                routing::Gating::Softmax, true},
        MoeCase{"prefix_top_p", 4, 2, false, SelectionRule::TopP, Granularity::Prefix},
        MoeCase{"sequence_expert_choice", 4, 2, false, SelectionRule::ExpertChoice, Granularity::Sequence},
        MoeCase{"sigmoid_sequence_top2", 4, 2, true, SelectionRule::TopK, Granularity::Sequence, 0, 0,
                routing::Gating::Sigmoid},
        MoeCase{"sigmoid_prefix_top1", 4, 1, false, SelectionRule::TopK, Granularity::Prefix, 0, 0,
                routing::Gating::Sigmoid},
        MoeCase{"sigmoid_expert_choice", 4, 2, false, SelectionRule::ExpertChoice, Granularity::Token, 0, 0,
                routing::Gating::Sigmoid}),
    [](const ::testing::TestParamInfo<MoeCase>& info) { return info.param.name; });

// The expert-row scratch reaches its size in the first step: a later step whose routing sends every token to the
// same experts (the largest expert possible, N rows) finds it big enough and allocates nothing. The first step's
// largest expert is smaller, so scratch sized by it would grow in the second.
TEST(MoeFfn, ExpertRowScratchIsSizedInTheFirstStep) {
  const int64_t B = 2, T = 4, N = B * T, d = 6, h = 5, E = 4;
  const MoeFfnShape s{B, T, d, E, h};
  auto router = random_vector(E * d, 21, 3.0), r = random_vector(N * d, 22), spread = random_vector(N * d, 20);
  std::vector<double> same(N * d);  // every token the same row: every token picks the same two experts
  for (int64_t i = 0; i < N * d; ++i) same[i] = spread[i % d];
  std::vector<std::vector<double>> weights(3 * E), grads(3 * E);
  for (int64_t i = 0; i < 3 * E; ++i) weights[i] = random_vector(h * d, 30 + i), grads[i].assign(h * d, 0.0);
  MoeFfnWeights<double> w{router.data(), {}};
  MoeFfnGrads<double> g{nullptr, {}};
  for (int64_t e = 0; e < E; ++e) {
    w.experts.push_back({weights[3 * e].data(), weights[3 * e + 1].data(), weights[3 * e + 2].data()});
    g.experts.push_back({grads[3 * e].data(), grads[3 * e + 1].data(), grads[3 * e + 2].data()});
  }
  MoeFfnActivations<double> act;
  MoeFfnScratch<double> scratch;
  std::vector<double> out(N * d), d_x(N * d);
  const auto step = [&](const std::vector<double>& x) {
    moe_ffn_forward<double>(kF32, out.data(), act, scratch, x.data(), nullptr, w, s, true);
    moe_ffn_backward(kF32, d_x.data(), g, scratch, r.data(), x.data(), act, w, s);
    return act.plan.max_expert_rows();
  };
  const auto buffers = [&] {
    return std::vector<const double*>{scratch.g_rows.data(), scratch.u_rows.data(), scratch.act_rows.data(),
                                      scratch.d_act.data(),  scratch.d_g.data(),    scratch.d_u.data()};
  };
  EXPECT_LT(step(spread), N);
  const std::vector<const double*> first = buffers();
  EXPECT_EQ(step(same), N);
  EXPECT_EQ(buffers(), first);
}

}  // namespace
}  // namespace moelab
