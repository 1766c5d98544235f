#include "backend/cpu/stream_copy.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

namespace moelab::cpu {

namespace {

// Below this many bytes one thread copies alone: starting the team costs more than the second thread saves.
constexpr int64_t kParallelBytes = int64_t{1} << 18;

#if defined(__AVX512F__)
constexpr int64_t kVectorBytes = 64;  // one cache line per store
inline void stream_vector(void* dst, const void* src) {
  _mm512_stream_si512(static_cast<__m512i*>(dst), _mm512_loadu_si512(src));
}
#elif defined(__AVX__)
constexpr int64_t kVectorBytes = 32;
inline void stream_vector(void* dst, const void* src) {
  _mm256_stream_si256(static_cast<__m256i*>(dst), _mm256_loadu_si256(static_cast<const __m256i*>(src)));
}
#else
constexpr int64_t kVectorBytes = 0;  // no streaming stores: a plain copy
inline void stream_vector(void*, const void*) {}
#endif

// The values are moved as bits, so any trivially copyable T streams the same way.
template <typename T>
void stream_values(T* dst, const T* src, int64_t n) {
  if constexpr (kVectorBytes == 0) {
    std::copy_n(src, n, dst);
  } else {
    constexpr int64_t kLane = kVectorBytes / int64_t{sizeof(T)};  // values per store
    // Streaming stores need an aligned destination: plain stores up to the first aligned address and after the
    // last whole vector.
    const auto misaligned = static_cast<int64_t>(reinterpret_cast<uintptr_t>(dst) % kVectorBytes);
    const int64_t head = misaligned == 0 ? 0 : std::min<int64_t>(n, kLane - misaligned / int64_t{sizeof(T)});
    const int64_t vectors = (n - head) / kLane, tail = head + vectors * kLane;
    std::copy_n(src, head, dst);
#pragma omp parallel if (n * int64_t{sizeof(T)} >= kParallelBytes)
    {
#pragma omp for schedule(static) nowait
      for (int64_t v = 0; v < vectors; ++v) stream_vector(dst + head + v * kLane, src + head + v * kLane);
      // Streaming stores are weakly ordered: each thread fences its own before the region's closing barrier, so
      // that they are visible to whatever reads dst next.
      _mm_sfence();
    }
    std::copy_n(src + tail, n - tail, dst + tail);
  }
}

}  // namespace

void stream_copy(float* dst, const float* src, int64_t n) { stream_values(dst, src, n); }
void stream_copy(uint16_t* dst, const uint16_t* src, int64_t n) { stream_values(dst, src, n); }
void stream_copy(double* dst, const double* src, int64_t n) { std::copy_n(src, n, dst); }

}  // namespace moelab::cpu
