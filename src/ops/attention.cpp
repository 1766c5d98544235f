#include "ops/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/gemm.h"
#include "core/error.h"
#include "core/fast_exp.h"
#include "core/grow.h"

namespace moelab::ops {
namespace {

using cpu::Trans;

// Query rows are processed in blocks of kBlock, and each block is multiplied only against keys 0..(block end):
// the work above the causal diagonal shrinks to half of one kBlock x kBlock tile per block, while every product
// stays one gemm large enough to run near full speed. Inside the diagonal tile the probabilities above the
// diagonal are exact zeros, so the block's products need no mask.
constexpr int64_t kBlock = 64;

// Below this many multiply-adds (of the full T x T products) a call runs on one thread: starting an OpenMP team
// costs more than the work (and far more when the cores are busy), which matters for decoding and small tests.
constexpr int64_t kParallelMinWork = int64_t{1} << 20;

// The per-head products are f32 in a bf16 model too (cpu::gemm without a context): they run inside the parallel
// loops, and oneDNN 2.6 has no bf16 GEMM that one thread can call on its block (docs/performance.md).

// The row loops below ask for 16 lanes: 16 floats fill one AVX-512 register, where GCC would otherwise settle for
// 256-bit vectors under -march=native (the softmax runs about 15% faster).

// Softmax over row[0..n) in place (the scores a query may see), zeros over row[n..len) (the masked future).
// Returns the log-sum-exp of the scores, from which backward makes the same probabilities again.
template <typename Real>
Real softmax_prefix(Real* row /*[len]*/, int64_t n, int64_t len) {
  Real m = row[0];
#pragma omp simd simdlen(16) reduction(max : m)
  for (int64_t j = 1; j < n; ++j) m = row[j] > m ? row[j] : m;
  Real sum = 0;
#pragma omp simd simdlen(16) reduction(+ : sum)
  for (int64_t j = 0; j < n; ++j) {
    const Real e = exp_nonpositive(row[j] - m);
    row[j] = e;
    sum += e;
  }
  const Real inv = Real(1) / sum;
#pragma omp simd simdlen(16)
  for (int64_t j = 0; j < n; ++j) row[j] *= inv;
  std::fill(row + n, row + len, Real(0));
  return m + std::log(sum);
}

// The probabilities of one row again from its scores and their log-sum-exp: exp(s - lse) over [0..n), one pass
// where the softmax takes three; zeros over [n..len). Rounding can leave s - lse a hair above 0 for the row's
// largest score, hence the clamp into exp_nonpositive's domain.
template <typename Real>
void probs_from_lse(Real* row /*[len]*/, int64_t n, int64_t len, Real lse) {
#pragma omp simd simdlen(16)
  for (int64_t j = 0; j < n; ++j) row[j] = exp_nonpositive(std::min(row[j] - lse, Real(0)));
  std::fill(row + n, row + len, Real(0));
}

// Softmax backward on one row, in place: dP becomes dS = scale * P ⊙ (dP - <P, dP>) over [0..n), with the
// attention scale folded in so the products after it need no extra pass; zeros over [n..len).
template <typename Real>
void softmax_backward_prefix(Real* d /*[len]*/, const Real* p /*[len]*/, int64_t n, int64_t len, Real scale) {
  Real dot = 0;
#pragma omp simd simdlen(16) reduction(+ : dot)
  for (int64_t j = 0; j < n; ++j) dot += p[j] * d[j];
#pragma omp simd simdlen(16)
  for (int64_t j = 0; j < n; ++j) d[j] = scale * p[j] * (d[j] - dot);
  std::fill(d + n, d + len, Real(0));
}

// Per-thread [kBlock,T] buffers, grown on demand and kept: no allocation per call once warm. Two per element type:
// a row block's probabilities and backward's dP for the block, turned into dS in place.
enum class Scratch { Probs, ProbsGrad };
template <typename Real, Scratch which>
Real* thread_scratch(int64_t n) {
  thread_local std::vector<Real> buffer;
  grow_to(buffer, n);
  return buffer.data();
}

}  // namespace

template <typename Real>
void attention_forward(Real* out /*[B,T,H,D]*/, Real* lse /*[B,H,T] or null*/, const Real* q /*[B,T,H,D]*/,
                       const Real* k /*[B,T,Hkv,D]*/, const Real* v /*[B,T,Hkv,D]*/, int64_t B, int64_t T, int64_t H,
                       int64_t Hkv, int64_t D) {
  MOELAB_ASSERT(Hkv > 0 && H % Hkv == 0, "attention: query heads must be a multiple of key/value heads");
  const Real scale = Real(1) / std::sqrt(Real(D));
  const int64_t group = H / Hkv, ldq = H * D, ldkv = Hkv * D;
  // Work items are (batch, query head): they share nothing written, so any split is deterministic.
#pragma omp parallel for schedule(static) if (B * H * T * T * D >= kParallelMinWork)
  for (int64_t bh = 0; bh < B * H; ++bh) {
    const int64_t b = bh / H, h = bh % H, g = h / group;
    const Real* qh /*[T,D] row stride H*D*/ = q + b * T * ldq + h * D;
    const Real* kg /*[T,D] row stride Hkv*D*/ = k + b * T * ldkv + g * D;
    const Real* vg /*[T,D] row stride Hkv*D*/ = v + b * T * ldkv + g * D;
    Real* oh /*[T,D] row stride H*D*/ = out + b * T * ldq + h * D;
    // The block's probabilities, columns 0..i1 of each row, in a per-thread buffer that stays in cache.
    Real* pb /*[kBlock,T]*/ = thread_scratch<Real, Scratch::Probs>(kBlock * T);
    for (int64_t i0 = 0; i0 < T; i0 += kBlock) {
      const int64_t i1 = std::min(i0 + kBlock, T), rows = i1 - i0;
      cpu::gemm(Trans::N, Trans::T, rows, i1, D, scale, qh + i0 * ldq, ldq, kg, ldkv, Real(0), pb, T);
      for (int64_t t = i0; t < i1; ++t) {
        const Real row_lse = softmax_prefix(pb + (t - i0) * T, t + 1, i1);
        if (lse) lse[bh * T + t] = row_lse;
      }
      cpu::gemm(Trans::N, Trans::N, rows, D, i1, Real(1), pb, T, vg, ldkv, Real(0), oh + i0 * ldq, ldq);
    }
  }
}

template <typename Real>
void attention_backward(const AttentionInputGrads<Real>& grads, const Real* d_out, const AttentionSaved<Real>& saved,
                        const AttentionDims& dims) {
  Real *d_q = grads.d_q, *d_k = grads.d_k, *d_v = grads.d_v;
  const Real *q = saved.q, *k = saved.k, *v = saved.v, *lse = saved.lse;
  const int64_t B = dims.B, T = dims.T, H = dims.H, Hkv = dims.Hkv, D = dims.D;
  MOELAB_ASSERT(Hkv > 0 && H % Hkv == 0, "attention: query heads must be a multiple of key/value heads");
  const Real scale = Real(1) / std::sqrt(Real(D));
  const int64_t group = H / Hkv, ldq = H * D, ldkv = Hkv * D;
  // Work items are (batch, key/value head): the query heads sharing a k/v head, and their row blocks, run in order
  // inside one item, so the sums forming d_k and d_v have a fixed order whatever the thread count.
#pragma omp parallel for schedule(static) if (B * H * T * T * D >= kParallelMinWork)
  for (int64_t bg = 0; bg < B * Hkv; ++bg) {
    const int64_t b = bg / Hkv, g = bg % Hkv;
    Real* p /*[kBlock,T]*/ = thread_scratch<Real, Scratch::Probs>(kBlock * T);
    Real* ds /*[kBlock,T]: dP, then dS in place*/ = thread_scratch<Real, Scratch::ProbsGrad>(kBlock * T);
    const Real* kg /*[T,D] row stride Hkv*D*/ = k + b * T * ldkv + g * D;
    const Real* vg /*[T,D] row stride Hkv*D*/ = v + b * T * ldkv + g * D;
    Real* dkg /*[T,D] row stride Hkv*D*/ = d_k + b * T * ldkv + g * D;
    Real* dvg /*[T,D] row stride Hkv*D*/ = d_v + b * T * ldkv + g * D;
    // Every row block of every query head in the group adds to d_k and d_v, rows 0..(block end).
    for (int64_t j = 0; j < T; ++j) {
      std::fill(dkg + j * ldkv, dkg + j * ldkv + D, Real(0));
      std::fill(dvg + j * ldkv, dvg + j * ldkv + D, Real(0));
    }
    for (int64_t h = g * group; h < (g + 1) * group; ++h) {
      const Real* qh /*[T,D] row stride H*D*/ = q + b * T * ldq + h * D;
      const Real* doh /*[T,D] row stride H*D*/ = d_out + b * T * ldq + h * D;
      Real* dqh /*[T,D] row stride H*D*/ = d_q + b * T * ldq + h * D;
      const Real* lse_h /*[T]*/ = lse + (b * H + h) * T;
      // Row blocks, each over the causal prefix 0..i1 of its keys: P again from the scores and lse, dP = dO V^T,
      // dS = softmax backward, dQ = dS K; and the block's share of dV += P^T dO and dK += dS^T Q, rows 0..i1.
      for (int64_t i0 = 0; i0 < T; i0 += kBlock) {
        const int64_t i1 = std::min(i0 + kBlock, T), rows = i1 - i0;
        cpu::gemm(Trans::N, Trans::T, rows, i1, D, scale, qh + i0 * ldq, ldq, kg, ldkv, Real(0), p, T);
        for (int64_t t = i0; t < i1; ++t) probs_from_lse(p + (t - i0) * T, t + 1, i1, lse_h[t]);
        cpu::gemm(Trans::N, Trans::T, rows, i1, D, Real(1), doh + i0 * ldq, ldq, vg, ldkv, Real(0), ds, T);
        for (int64_t t = i0; t < i1; ++t)
          softmax_backward_prefix(ds + (t - i0) * T, p + (t - i0) * T, t + 1, i1, scale);
        cpu::gemm(Trans::N, Trans::N, rows, D, i1, Real(1), ds, T, kg, ldkv, Real(0), dqh + i0 * ldq, ldq);
        cpu::gemm(Trans::T, Trans::N, i1, D, rows, Real(1), p, T, doh + i0 * ldq, ldq, Real(1), dvg, ldkv);
        cpu::gemm(Trans::T, Trans::N, i1, D, rows, Real(1), ds, T, qh + i0 * ldq, ldq, Real(1), dkg, ldkv);
      }
    }
  }
}

template void attention_forward<float>(float*, float*, const float*, const float*, const float*, int64_t, int64_t,
                                       int64_t, int64_t, int64_t);
template void attention_forward<double>(double*, double*, const double*, const double*, const double*, int64_t, int64_t,
                                        int64_t, int64_t, int64_t);
template void attention_backward<float>(const AttentionInputGrads<float>&, const float*, const AttentionSaved<float>&,
                                        const AttentionDims&);
template void attention_backward<double>(const AttentionInputGrads<double>&, const double*,
                                         const AttentionSaved<double>&, const AttentionDims&);

}  // namespace moelab::ops
