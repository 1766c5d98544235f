#include "backend/cpu/compute_context.h"

#include <cstdint>

#include "backend/cpu/gemm_bf16.h"

namespace moelab::cpu {

bool Bf16Mirror::covers(const float* x, int64_t rows, int64_t cols, int64_t ld) const {
  const auto address = [](const float* p) { return reinterpret_cast<uintptr_t>(p); };
  return n > 0 && address(x) >= address(f32) && address(x + (rows - 1) * ld + cols) <= address(f32 + n);
}

const Bf16Copies::Copy* Bf16Copies::find(const float* src, int64_t ld, int64_t rows, int64_t cols, int64_t out_rows,
                                         int64_t out_cols) const {
  for (size_t i = 0; i < live_; ++i) {
    const Copy& c = copies_[i];
    if (c.src == src && c.ld == ld && c.rows == rows && c.cols == cols && c.out_rows == out_rows &&
        c.out_cols == out_cols)
      return &c;
  }
  return nullptr;
}

Bf16Copies::Copy& Bf16Copies::add(const float* src, int64_t ld, int64_t rows, int64_t cols, int64_t out_rows,
                                  int64_t out_cols) {
  if (live_ == copies_.size()) copies_.emplace_back();
  Copy& c = copies_[live_++];
  c.src = src, c.ld = ld, c.rows = rows, c.cols = cols, c.out_rows = out_rows, c.out_cols = out_cols;
  return c;
}

ComputeContext ComputeContext::with_f32_products() const {
  ComputeContext c = *this;
  c.precision = GemmPrecision::F32;
  return c;
}

Bf16ReuseRegion::Bf16ReuseRegion(const ComputeContext& outer) : ctx_(outer) {
  if (!ctx_.copy_store) return;
  ctx_.copy_store->drop();
  ctx_.reuse_copies = true;
}

Bf16ReuseRegion::~Bf16ReuseRegion() {
  if (ctx_.copy_store) ctx_.copy_store->drop();
}

ComputeContext ComputeCaches::context(const float* weights, int64_t n, GemmPrecision precision, bool pack_weights) {
  ComputeContext c;
  c.precision = precision;
  c.copy_store = &copies_;
  if (precision == GemmPrecision::Bf16) {
    // One pass over the weights instead of one per GEMM that reads them, forward and backward; none at all while
    // they have not changed (inference) or the optimizer kept the mirror current (training).
    c.mirror = {weights, n, current_mirror(weights, n)};
  } else if (pack_weights) {
    c.packed = {weights, n, &packed_};
  }
  return c;
}

void ComputeCaches::weights_changed() {
  bf16_current_ = false;
  packed_.clear();
}

uint16_t* ComputeCaches::current_mirror(const float* weights, int64_t n) {
  if (!bf16_current_) {
    bf16_.resize(n);
    to_bf16(weights, n, bf16_.data());
    bf16_current_ = true;
  }
  return bf16_.data();
}

}  // namespace moelab::cpu
