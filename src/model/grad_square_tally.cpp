#include "model/grad_square_tally.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/ordered_sum.h"

namespace moelab {

void GradSquareTally::record(const float* grad, int64_t n, double sum_squares) {
  const int64_t offset = grad - grads_;
  auto at = std::lower_bound(entries_.begin(), entries_.end(), offset,
                             [](const Entry& e, int64_t o) { return e.offset < o; });
  if (at == entries_.end() || at->offset != offset) at = entries_.insert(at, Entry{offset, n, 0.0, false});
  MOELAB_ASSERT(at->n == n, "a gradient tensor recorded with two sizes");
  MOELAB_ASSERT(at == entries_.begin() || std::prev(at)->offset + std::prev(at)->n <= offset,
                "recorded gradient tensors overlap");
  MOELAB_ASSERT(std::next(at) == entries_.end() || offset + n <= std::next(at)->offset,
                "recorded gradient tensors overlap");
  at->sum_squares = sum_squares;
  at->known = true;
}

void GradSquareTally::forget() {
  for (Entry& e : entries_) e.known = false;
}

int64_t GradSquareTally::known_values() const {
  int64_t n = 0;
  for (const Entry& e : entries_) n += e.known ? e.n : 0;
  return n;
}

double GradSquareTally::norm(int64_t n) const {
  const auto read = [&](int64_t from, int64_t to) { return sum_of_squares(grads_ + from, to - from); };
  double total = 0;
  int64_t done = 0;  // everything before this element is in total
  for (const Entry& e : entries_) {
    if (!e.known) continue;
    MOELAB_ASSERT(e.offset + e.n <= n, "a recorded gradient tensor lies past the norm's range");
    total += read(done, e.offset);
    total += e.sum_squares;
    done = e.offset + e.n;
  }
  total += read(done, n);
  return std::sqrt(total);
}

}  // namespace moelab
