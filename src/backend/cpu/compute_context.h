// How a pass over a model runs its float GEMMs, stated by the caller instead of decided by process-wide state.
//
// A ComputeContext says which products a GEMM makes (f32, or bf16 operands accumulated in f32) and which ready-made
// operand copies it may read: the model's weights rounded to bf16 (the mirror), the weights packed for oneDNN
// (forward-only f32 passes) and, inside a Bf16ReuseRegion, the bf16 copies earlier GEMMs of the region made. The
// model makes one per forward and per backward from its ComputeCaches and hands it down to every sublayer; a call
// site reads `cpu::gemm(ctx, ...)` (ctx's mode), `cpu::gemm(ctx.with_f32_products(), ...)` (f32 whatever the model
// runs in) or `cpu::gemm(...)` (plain f32, no copies). A second backend implements the same seam: the device
// copies it keeps of the weights live in its caches and its contexts say which to read (docs/architecture.md).
#pragma once

#include <cstdint>
#include <vector>

#include "backend/cpu/packed_weights.h"

namespace moelab::cpu {

enum class GemmPrecision { F32, Bf16 };

// A model's weights rounded to bf16: bf16[i] = to_bf16(f32[i]) for i < n, kept current by the ComputeCaches.
struct Bf16Mirror {
  const float* f32 = nullptr;  // [n]
  int64_t n = 0;               // 0: no mirror
  const uint16_t* bf16 = nullptr;

  // Whether the stored matrix [rows, cols] (row stride ld) lies inside f32 [n].
  bool covers(const float* x, int64_t rows, int64_t cols, int64_t ld) const;
};

// bf16 copies of f32 operands that later GEMMs of one Bf16ReuseRegion read again. The storage stays when the
// copies are dropped, so that a warm training step allocates nothing.
class Bf16Copies {
 public:
  struct Copy {
    const float* src;                            // the f32 matrix as stored
    int64_t ld, rows, cols, out_rows, out_cols;  // its row stride and extent; the copy's padded extent
    std::vector<uint16_t> data;                  // [out_rows, out_cols] at its start (grown only)
  };
  // The live copy of exactly this matrix in exactly this padded layout, or null.
  const Copy* find(const float* src, int64_t ld, int64_t rows, int64_t cols, int64_t out_rows, int64_t out_cols) const;
  // A new live copy with these fields set; the caller fills its data.
  Copy& add(const float* src, int64_t ld, int64_t rows, int64_t cols, int64_t out_rows, int64_t out_cols);
  void drop() { live_ = 0; }

 private:
  std::vector<Copy> copies_;  // [0, live_) are live, the rest keep their storage
  size_t live_ = 0;
};

struct ComputeContext {
  GemmPrecision precision = GemmPrecision::F32;
  Bf16Mirror mirror;                 // bf16: weights read from their rounded copy
  PackedWeightsView packed;          // f32, forward only: weights read packed
  Bf16Copies* copy_store = nullptr;  // storage a Bf16ReuseRegion keeps its copies in; null: no reuse
  bool reuse_copies = false;         // set by a Bf16ReuseRegion only

  // The same weights and copies, with f32 products: what the router's products use in a bf16 model.
  ComputeContext with_f32_products() const;
};

// A stretch of bf16 GEMMs that reuse the copies they make of their operands: a copy is made at a matrix's first
// read (address, extent, row stride, padding) and found again by every later read inside the region, e.g. a SwiGLU
// backward, which reads each of d_out, d_g, d_u and x twice. Whoever opens one promises that no matrix its GEMMs
// read changes while it lives. The copies are dropped when a region opens and when it closes, so no region can hand
// out another's copy of a matrix since rewritten at the same address (a nested region only costs the outer one its
// copies). Without a copy store in the context, the region changes nothing.
class Bf16ReuseRegion {
 public:
  explicit Bf16ReuseRegion(const ComputeContext& outer);
  ~Bf16ReuseRegion();
  Bf16ReuseRegion(const Bf16ReuseRegion&) = delete;
  Bf16ReuseRegion& operator=(const Bf16ReuseRegion&) = delete;

  const ComputeContext& context() const { return ctx_; }

 private:
  ComputeContext ctx_;
};

// What a model keeps so that its GEMMs can run fast: its weights rounded to bf16, packed for oneDNN, and the
// storage of bf16 operand copies. One per model, over the model's flat weight array, which must not move.
class ComputeCaches {
 public:
  // The context of one pass over weights [n] in `precision`, rounding the weights first when the mirror is stale.
  // pack_weights: an f32 forward-only pass reads the weights packed, packing each at first use; the weights must
  // then stay unchanged until drop_packed().
  ComputeContext context(const float* weights, int64_t n, GemmPrecision precision, bool pack_weights);
  // The weights changed: the mirror is stale and the packed copies are dropped.
  void weights_changed();
  // The mirror made current, for a caller that keeps it so as it changes the weights (an optimizer step).
  uint16_t* current_mirror(const float* weights, int64_t n);
  // The mirror while it is current, else null: to update a few of its entries along with the weights.
  uint16_t* mirror_if_current() { return bf16_current_ ? bf16_.data() : nullptr; }
  void drop_packed() { packed_.clear(); }
  int64_t packed_matrices() const { return packed_.size(); }

 private:
  std::vector<uint16_t> bf16_;  // [n] the mirror
  bool bf16_current_ = false;   // bf16_ == to_bf16(weights)
  PackedWeights packed_;
  Bf16Copies copies_;
};

}  // namespace moelab::cpu
