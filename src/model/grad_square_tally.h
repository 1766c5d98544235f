// Sums of squared gradient values that the backward pass computed while it wrote them (the bf16 expert weight
// gradients, cpu::copy_with_squares), one per gradient tensor, so that the gradient norm reads from memory only
// the gradients it has no sum for. On the large shape that spares clipping a read of 96% of all gradients.
//
// The norm is the same function of the gradients whichever sums were recorded, up to the order of the additions:
// recorded tensors count by their sums, each stretch between them by ordered_sum, all added in buffer order. So
// it does not depend on the thread count either.
#pragma once

#include <cstdint>
#include <vector>

namespace moelab {

class GradSquareTally {
 public:
  // grads: the first element of the gradient buffer that record() receives pointers into.
  explicit GradSquareTally(const float* grads) : grads_(grads) {}

  // grad [n] now holds values whose squares sum to sum_squares (as ordered_sum sums them). A tensor recorded again
  // replaces its sum: the last write of a gradient is the one that counts.
  void record(const float* grad, int64_t n, double sum_squares);
  // The gradients changed in a way not recorded (zeroed, handed to an optimizer or a caller): forget every sum.
  void forget();
  // ||grads[0, n)||_2: the recorded tensors by their sums, everything else read.
  double norm(int64_t n) const;
  // How many gradient values norm() would not read.
  int64_t known_values() const;

 private:
  struct Entry {
    int64_t offset;  // first element in the gradient buffer
    int64_t n;
    double sum_squares;
    bool known;  // false after forget(); entries stay so that the training step allocates nothing
  };
  const float* grads_;
  std::vector<Entry> entries_;  // sorted by offset, not overlapping
};

}  // namespace moelab
