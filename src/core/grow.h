// Sizing scratch buffers that serve calls of different sizes (one expert's rows, a GEMM operand's bf16 copy).
// std::vector::resize value-initialises what it adds, so a buffer resized to each call's size was zero-filled on
// the calling thread, while the others waited, every time a larger call followed a smaller one.
#pragma once

#include <cstdint>
#include <vector>

namespace moelab {

// v holds at least n elements afterwards, and never fewer than before. Its elements past the n a caller writes
// keep whatever an earlier call left there.
template <typename T>
void grow_to(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
}

}  // namespace moelab
