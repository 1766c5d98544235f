#include "backend/cpu/stream_copy.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

namespace moelab::cpu {

namespace {

// Below this many values one thread copies alone: starting the team costs more than the second thread saves.
constexpr int64_t kParallelValues = int64_t{1} << 16;

#if defined(__AVX512F__)
constexpr int64_t kLane = 16;  // floats per store, one 64-byte line
inline void stream_line(float* dst, const float* src) { _mm512_stream_ps(dst, _mm512_loadu_ps(src)); }
#elif defined(__AVX__)
constexpr int64_t kLane = 8;
inline void stream_line(float* dst, const float* src) { _mm256_stream_ps(dst, _mm256_loadu_ps(src)); }
#else
constexpr int64_t kLane = 1;
inline void stream_line(float* dst, const float* src) { *dst = *src; }
#endif

}  // namespace

void stream_copy(float* dst, const float* src, int64_t n) {
  // Streaming stores need an aligned destination: plain stores up to the first aligned address and after the last
  // whole vector.
  const auto misaligned = static_cast<int64_t>(reinterpret_cast<uintptr_t>(dst) % (kLane * sizeof(float)));
  const int64_t head = misaligned == 0 ? 0 : std::min<int64_t>(n, kLane - misaligned / int64_t{sizeof(float)});
  const int64_t vectors = (n - head) / kLane, tail = head + vectors * kLane;
  std::copy_n(src, head, dst);
#pragma omp parallel if (n >= kParallelValues)
  {
#pragma omp for schedule(static) nowait
    for (int64_t v = 0; v < vectors; ++v) stream_line(dst + head + v * kLane, src + head + v * kLane);
    // Streaming stores are weakly ordered: each thread fences its own before the region's closing barrier, so
    // that they are visible to whatever reads dst next.
    _mm_sfence();
  }
  std::copy_n(src + tail, n - tail, dst + tail);
}

void stream_copy(double* dst, const double* src, int64_t n) { std::copy_n(src, n, dst); }

}  // namespace moelab::cpu
