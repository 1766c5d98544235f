#include "train/adamw.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "backend/cpu/bf16.h"

namespace moelab {

namespace {

// The loop, compiled once per combination of the optional writes so that each vectorises without a test inside.
template <bool kRound, bool kZero, typename T>
void adamw_pass(T* params, T* grads, T* m, T* v, uint16_t* bf16, int64_t n, const AdamWHyper& h) {
  const T lr = static_cast<T>(h.lr);
  const T decay = static_cast<T>(1.0 - h.lr * h.weight_decay);
  const T b1 = static_cast<T>(h.beta1), b2 = static_cast<T>(h.beta2);
  const T c1 = static_cast<T>(1.0 / (1.0 - std::pow(h.beta1, static_cast<double>(h.t))));
  const T c2 = static_cast<T>(1.0 / (1.0 - std::pow(h.beta2, static_cast<double>(h.t))));
  const T eps = static_cast<T>(h.eps), scale = static_cast<T>(h.grad_scale);
#pragma omp parallel for simd simdlen(16) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    // Each multiply-add written as one fused operation: the compiler then contracts nothing of its own accord, and
    // the AVX-512 pass below, doing the same, gets the same bits.
    const T g = grads[i] * scale;
    m[i] = std::fma(b1, m[i], (T(1) - b1) * g);
    v[i] = std::fma(b2, v[i], (T(1) - b2) * g * g);
    const T p = std::fma(params[i], decay, -(lr * (m[i] * c1) / (std::sqrt(v[i] * c2) + eps)));
    params[i] = p;
    if constexpr (kRound) bf16[i] = cpu::to_bf16(static_cast<float>(p));
    if constexpr (kZero) grads[i] = T(0);
  }
}

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
// The float pass that also writes the bf16 copy, by hand: the copy goes out with streaming stores, 32 values (one
// 64-byte line) at a time, where a plain store would first read each line of it from memory. On the large shape's
// 294M parameters that saves about a tenth of AdamW's time (moelab_bench --benchmark_filter=AdamW).
// Every value goes through the same operations as adamw_pass's loop, so the update is the same bits; the ends use
// masked loads and stores. Some operations are in their zero-masked form with every lane set: GCC 12 warns that the
// plain ones' undefined pass-through may be uninitialised.
class AdamWRoundAvx512 {
 public:
  AdamWRoundAvx512(const AdamWHyper& h, bool zero_grads) : zero_(zero_grads) {
    const float b1 = static_cast<float>(h.beta1), b2 = static_cast<float>(h.beta2);
    lr_ = _mm512_set1_ps(static_cast<float>(h.lr));
    decay_ = _mm512_set1_ps(static_cast<float>(1.0 - h.lr * h.weight_decay));
    b1_ = _mm512_set1_ps(b1), b2_ = _mm512_set1_ps(b2);
    one_minus_b1_ = _mm512_set1_ps(1.0f - b1), one_minus_b2_ = _mm512_set1_ps(1.0f - b2);
    c1_ = _mm512_set1_ps(static_cast<float>(1.0 / (1.0 - std::pow(h.beta1, static_cast<double>(h.t)))));
    c2_ = _mm512_set1_ps(static_cast<float>(1.0 / (1.0 - std::pow(h.beta2, static_cast<double>(h.t)))));
    eps_ = _mm512_set1_ps(static_cast<float>(h.eps)), scale_ = _mm512_set1_ps(static_cast<float>(h.grad_scale));
  }

  // Elements [lo, hi) on this thread.
  void run(float* params, float* grads, float* m, float* v, uint16_t* bf16, int64_t lo, int64_t hi) const {
    int64_t i = lo;
    const auto misaligned = static_cast<int64_t>(reinterpret_cast<uintptr_t>(bf16 + i) % 64) / 2;
    const int64_t head_end = std::min(hi, misaligned == 0 ? i : i + 32 - misaligned);
    for (; i < head_end; i += 16) ends(params, grads, m, v, bf16, i, std::min<int64_t>(16, head_end - i));
    i = head_end;
    for (; i + 32 <= hi; i += 32) {  // one line of the copy: two halves of 16 values, streamed
      const __m256i low = to_bf16(update(params, grads, m, v, i, 0xFFFF));
      const __m256i high = to_bf16(update(params, grads, m, v, i + 16, 0xFFFF));
      _mm256_stream_si256(reinterpret_cast<__m256i*>(bf16 + i), low);
      _mm256_stream_si256(reinterpret_cast<__m256i*>(bf16 + i + 16), high);
    }
    for (; i < hi; i += 16) ends(params, grads, m, v, bf16, i, std::min<int64_t>(16, hi - i));
  }

 private:
  __m512 lr_, decay_, b1_, b2_, one_minus_b1_, one_minus_b2_, c1_, c2_, eps_, scale_;
  bool zero_;

  // The new weights of elements i..i+15 where `mask` is set; m, v, the weights and the zeroed gradient written.
  __m512 update(float* params, float* grads, float* m, float* v, int64_t i, __mmask16 mask) const {
    const __m512 g = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, grads + i), scale_);
    const __m512 m_new = _mm512_fmadd_ps(b1_, _mm512_maskz_loadu_ps(mask, m + i), _mm512_mul_ps(one_minus_b1_, g));
    const __m512 v_new =
        _mm512_fmadd_ps(b2_, _mm512_maskz_loadu_ps(mask, v + i), _mm512_mul_ps(_mm512_mul_ps(one_minus_b2_, g), g));
    const __m512 step = _mm512_div_ps(_mm512_mul_ps(lr_, _mm512_mul_ps(m_new, c1_)),
                                      _mm512_add_ps(_mm512_maskz_sqrt_ps(0xFFFF, _mm512_mul_ps(v_new, c2_)), eps_));
    const __m512 p_new = _mm512_fmsub_ps(_mm512_maskz_loadu_ps(mask, params + i), decay_, step);
    _mm512_mask_storeu_ps(m + i, mask, m_new);
    _mm512_mask_storeu_ps(v + i, mask, v_new);
    _mm512_mask_storeu_ps(params + i, mask, p_new);
    if (zero_) _mm512_mask_storeu_ps(grads + i, mask, _mm512_setzero_ps());
    return p_new;
  }

  // cpu::to_bf16 on 16 lanes.
  static __m256i to_bf16(__m512 p) {
    const __m512i bits = _mm512_castps_si512(p);
    const __m512i odd = _mm512_and_si512(_mm512_maskz_srli_epi32(0xFFFF, bits, 16), _mm512_set1_epi32(1));
    const __m512i up = _mm512_add_epi32(bits, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), odd));
    return _mm512_maskz_cvtepi32_epi16(0xFFFF, _mm512_maskz_srli_epi32(0xFFFF, up, 16));
  }

  // Up to 16 elements from i with plain masked stores: before the copy's first whole line and after its last.
  void ends(float* params, float* grads, float* m, float* v, uint16_t* bf16, int64_t i, int64_t count) const {
    const auto mask = static_cast<__mmask16>((1u << count) - 1);
    _mm256_mask_storeu_epi16(bf16 + i, mask, to_bf16(update(params, grads, m, v, i, mask)));
  }
};

void adamw_round_avx512(float* params, float* grads, float* m, float* v, uint16_t* bf16, int64_t n, const AdamWHyper& h,
                        bool zero_grads) {
  const AdamWRoundAvx512 kernel(h, zero_grads);
#pragma omp parallel
  {
    // Each thread one contiguous share, cut at a multiple of 32 so that only the very ends are partial lines.
    const int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t per = (n / threads + 31) / 32 * 32;
    kernel.run(params, grads, m, v, bf16, std::min(n, t * per), t + 1 == threads ? n : std::min(n, (t + 1) * per));
    _mm_sfence();  // streaming stores are weakly ordered: fenced before the region's closing barrier
  }
}
#endif

}  // namespace

template <typename T>
void adamw_step(T* params, T* grads, T* m, T* v, int64_t n, const AdamWHyper& h, const AdamWAlso& also) {
  uint16_t* bf16 = also.params_bf16;
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
  if constexpr (std::is_same_v<T, float>)
    if (bf16) return adamw_round_avx512(params, grads, m, v, bf16, n, h, also.zero_grads);
#endif
  if (bf16 && also.zero_grads)
    adamw_pass<true, true>(params, grads, m, v, bf16, n, h);
  else if (bf16)
    adamw_pass<true, false>(params, grads, m, v, bf16, n, h);
  else if (also.zero_grads)
    adamw_pass<false, true>(params, grads, m, v, bf16, n, h);
  else
    adamw_pass<false, false>(params, grads, m, v, bf16, n, h);
}

template void adamw_step<float>(float*, float*, float*, float*, int64_t, const AdamWHyper&, const AdamWAlso&);
template void adamw_step<double>(double*, double*, double*, double*, int64_t, const AdamWHyper&, const AdamWAlso&);

}  // namespace moelab
