#include "model/attention_block.h"

#include "backend/cpu/gemm.h"
#include "core/op_profile.h"
#include "ops/attention.h"
#include "ops/bias.h"
#include "ops/clamp.h"
#include "ops/linear.h"
#include "ops/rmsnorm.h"
#include "ops/rope.h"

namespace moelab {

template <typename T>
void AttentionActivations<T>::resize(const AttentionShape& s, bool for_backward) {
  const int64_t N = s.rows();
  normed.resize(N * s.d);
  rstd.resize(N);
  q.resize(N * s.H * s.D);
  k.resize(N * s.Hkv * s.D);
  v.resize(N * s.Hkv * s.D);
  if (for_backward) lse.resize(s.B * s.H * s.T);
  ctx.resize(N * s.H * s.D);
  if (s.qk_norm != QkNorm::None) {
    q_lin.resize(N * s.H * s.D), k_lin.resize(N * s.Hkv * s.D);
    q_rstd.resize(s.qk_norm_rows(s.H)), k_rstd.resize(s.qk_norm_rows(s.Hkv));
  }
  if (s.clip_qkv > 0) clipped.resize(N * (s.H + 2 * s.Hkv) * s.D);
}

template <typename T>
void AttentionScratch<T>::resize(const AttentionShape& s) {
  const int64_t N = s.rows();
  d_ctx.resize(N * s.H * s.D);
  d_q.resize(N * s.H * s.D);
  d_k.resize(N * s.Hkv * s.D);
  d_v.resize(N * s.Hkv * s.D);
  d_normed.resize(N * s.d);
  if (s.qk_norm != QkNorm::None) d_q_lin.resize(N * s.H * s.D), d_k_lin.resize(N * s.Hkv * s.D);
}

namespace {

// Useful FLOPs of causal attention's forward: QK^T and PV over each query's prefix of keys, T(T+1)/2 pairs per
// head, 2 x D multiply-adds each (backward does twice this: dP, dQ, dK, dV).
double causal_attention_flops(const AttentionShape& s) {
  return 2.0 * s.B * s.H * s.D * static_cast<double>(s.T) * (s.T + 1);
}

}  // namespace

template <typename T>
void attention_block_forward(const cpu::ComputeContext& ctx, T* out, AttentionActivations<T>& act, const T* x,
                             const AttentionWeights<T>& w, const AttentionShape& s, bool for_backward) {
  const int64_t N = s.rows(), qw = s.H * s.D, kvw = s.Hkv * s.D;
  act.resize(s, for_backward);
  {
    profile::Scope p("fwd attention.norm", 0);
    ops::rmsnorm_forward(act.normed.data(), act.rstd.data(), x, w.norm, N, s.d, s.rms_eps);
  }
  {
    // With a q/k norm, q and k are projected into the norm's inputs, and the norm writes q and k.
    const bool qk_norm = s.qk_norm != QkNorm::None;
    T* q_proj = qk_norm ? act.q_lin.data() : act.q.data();
    T* k_proj = qk_norm ? act.k_lin.data() : act.k.data();
    {
      profile::Scope p("fwd attention.qkv_proj", 2.0 * N * s.d * (qw + 2 * kvw));
      ops::linear_forward(ctx, q_proj, act.normed.data(), w.wq, N, s.d, qw);
      ops::linear_forward(ctx, k_proj, act.normed.data(), w.wk, N, s.d, kvw);
      ops::linear_forward(ctx, act.v.data(), act.normed.data(), w.wv, N, s.d, kvw);
      if (s.qkv_bias) {
        ops::bias_forward(q_proj, w.bq, N, qw);
        ops::bias_forward(k_proj, w.bk, N, kvw);
        ops::bias_forward(act.v.data(), w.bv, N, kvw);
      }
    }
    if (qk_norm) {
      profile::Scope p("fwd attention.qk_norm", 0);
      ops::rmsnorm_forward(act.q.data(), act.q_rstd.data(), q_proj, w.q_norm, s.qk_norm_rows(s.H), s.qk_norm_width(s.H),
                           s.rms_eps);
      ops::rmsnorm_forward(act.k.data(), act.k_rstd.data(), k_proj, w.k_norm, s.qk_norm_rows(s.Hkv),
                           s.qk_norm_width(s.Hkv), s.rms_eps);
    }
    if (s.clip_qkv > 0) {
      profile::Scope p("fwd attention.clip_qkv", 0);
      uint8_t* clipped = act.clipped.data();
      ops::clamp_forward(act.q.data(), clipped, N * qw, s.clip_qkv);
      ops::clamp_forward(act.k.data(), clipped + N * qw, N * kvw, s.clip_qkv);
      ops::clamp_forward(act.v.data(), clipped + N * (qw + kvw), N * kvw, s.clip_qkv);
    }
  }
  {
    profile::Scope p("fwd attention.rope", 0);
    ops::rope_forward(act.q.data(), s.B, s.T, s.H, s.D, s.rope_theta);
    ops::rope_forward(act.k.data(), s.B, s.T, s.Hkv, s.D, s.rope_theta);
  }
  {
    profile::Scope p("fwd attention.core", causal_attention_flops(s));
    ops::attention_forward(act.ctx.data(), for_backward ? act.lse.data() : nullptr, act.q.data(), act.k.data(),
                           act.v.data(), s.B, s.T, s.H, s.Hkv, s.D);
  }
  profile::Scope p("fwd attention.out_proj", 2.0 * N * qw * s.d);
  ops::linear_forward(ctx, out, act.ctx.data(), w.wo, N, qw, s.d);
}

template <typename T>
void attention_block_backward(const cpu::ComputeContext& ctx, T* d_x, const AttentionGrads<T>& grads,
                              AttentionScratch<T>& sc, const T* d_out, const T* x, const AttentionActivations<T>& act,
                              const AttentionWeights<T>& w, const AttentionShape& s) {
  const int64_t N = s.rows(), qw = s.H * s.D, kvw = s.Hkv * s.D;
  sc.resize(s);
  {
    profile::Scope p("bwd attention.out_proj", 4.0 * N * qw * s.d);
    ops::linear_backward(ctx, sc.d_ctx.data(), grads.wo, d_out, act.ctx.data(), w.wo, N, qw, s.d);
  }
  {
    profile::Scope p("bwd attention.core", 2 * causal_attention_flops(s));
    ops::attention_backward({sc.d_q.data(), sc.d_k.data(), sc.d_v.data()}, sc.d_ctx.data(),
                            {act.q.data(), act.k.data(), act.v.data(), act.lse.data()}, {s.B, s.T, s.H, s.Hkv, s.D});
  }
  {
    profile::Scope p("bwd attention.rope", 0);
    ops::rope_backward(sc.d_q.data(), s.B, s.T, s.H, s.D, s.rope_theta);
    ops::rope_backward(sc.d_k.data(), s.B, s.T, s.Hkv, s.D, s.rope_theta);
  }
  if (s.clip_qkv > 0) {
    profile::Scope p("bwd attention.clip_qkv", 0);
    const uint8_t* clipped = act.clipped.data();
    ops::clamp_backward(sc.d_q.data(), clipped, N * qw);
    ops::clamp_backward(sc.d_k.data(), clipped + N * qw, N * kvw);
    ops::clamp_backward(sc.d_v.data(), clipped + N * (qw + kvw), N * kvw);
  }
  // The gradients of the projections' outputs: through the q/k norm when there is one.
  const T* d_q = sc.d_q.data();
  const T* d_k = sc.d_k.data();
  if (s.qk_norm != QkNorm::None) {
    profile::Scope p("bwd attention.qk_norm", 0);
    ops::rmsnorm_backward(sc.d_q_lin.data(), grads.q_norm, sc.d_q.data(), act.q_lin.data(), w.q_norm, act.q_rstd.data(),
                          s.qk_norm_rows(s.H), s.qk_norm_width(s.H));
    ops::rmsnorm_backward(sc.d_k_lin.data(), grads.k_norm, sc.d_k.data(), act.k_lin.data(), w.k_norm, act.k_rstd.data(),
                          s.qk_norm_rows(s.Hkv), s.qk_norm_width(s.Hkv));
    d_q = sc.d_q_lin.data(), d_k = sc.d_k_lin.data();
  }
  {
    // The normed input feeds three projections: its gradient is the sum of the three branches.
    profile::Scope p("bwd attention.qkv_proj", 4.0 * N * s.d * (qw + 2 * kvw));
    if (s.qkv_bias) {
      ops::bias_backward(grads.bq, d_q, N, qw);
      ops::bias_backward(grads.bk, d_k, N, kvw);
      ops::bias_backward(grads.bv, sc.d_v.data(), N, kvw);
    }
    ops::linear_backward(ctx, sc.d_normed.data(), grads.wq, d_q, act.normed.data(), w.wq, N, s.d, qw);
    cpu::gemm(ctx, cpu::Trans::N, cpu::Trans::N, N, s.d, kvw, T(1), d_k, kvw, w.wk, s.d, T(1), sc.d_normed.data(), s.d);
    cpu::gemm(ctx, cpu::Trans::N, cpu::Trans::N, N, s.d, kvw, T(1), sc.d_v.data(), kvw, w.wv, s.d, T(1),
              sc.d_normed.data(), s.d);
    ops::linear_backward<T>(ctx, nullptr, grads.wk, d_k, act.normed.data(), w.wk, N, s.d, kvw);
    ops::linear_backward<T>(ctx, nullptr, grads.wv, sc.d_v.data(), act.normed.data(), w.wv, N, s.d, kvw);
  }
  profile::Scope p("bwd attention.norm", 0);
  ops::rmsnorm_backward(d_x, grads.norm, sc.d_normed.data(), x, w.norm, act.rstd.data(), N, s.d);
}

template struct AttentionActivations<float>;
template struct AttentionActivations<double>;
template struct AttentionScratch<float>;
template struct AttentionScratch<double>;
template void attention_block_forward<float>(const cpu::ComputeContext&, float*, AttentionActivations<float>&,
                                             const float*, const AttentionWeights<float>&, const AttentionShape&, bool);
template void attention_block_forward<double>(const cpu::ComputeContext&, double*, AttentionActivations<double>&,
                                              const double*, const AttentionWeights<double>&, const AttentionShape&,
                                              bool);
template void attention_block_backward<float>(const cpu::ComputeContext&, float*, const AttentionGrads<float>&,
                                              AttentionScratch<float>&, const float*, const float*,
                                              const AttentionActivations<float>&, const AttentionWeights<float>&,
                                              const AttentionShape&);
template void attention_block_backward<double>(const cpu::ComputeContext&, double*, const AttentionGrads<double>&,
                                               AttentionScratch<double>&, const double*, const double*,
                                               const AttentionActivations<double>&, const AttentionWeights<double>&,
                                               const AttentionShape&);

}  // namespace moelab
