// f32 weights kept in oneDNN's blocked layout for inference. oneDNN's sgemm packs its B operand into that layout
// inside every call; a model that only runs forwards reads each weight many times unchanged, so packing it once
// and running the matmul primitive on the packed copy saves that work: one MoE layer's expert gate projections
// (16 x 256 x 512 x 1408) run at 425 GFLOP/s instead of 370, and forward-only tokens/s rise 6-9%
// (docs/performance.md, "Inference on packed weights").
//
// Under a ComputeContext whose `packed` view is set (f32 precision, outside OpenMP parallel regions), cpu::gemm
// computes C = A · Bᵀ (A not transposed, B transposed: a linear layer's forward, alpha 1 and beta 0, dense rows)
// from the packed copy of B when B lies inside the view's f32 array, packing B at its first such use. Every other
// GEMM runs as before.
#pragma once

#include <cstdint>
#include <memory>

namespace moelab::cpu {

// The packed copies, one per weight matrix (by address and shape), and the primitives that read them. The copies
// must be dropped (clear) before the weights they copy change; the primitives, which depend on shapes only, stay
// for the next scope (a training run's next evaluation).
class PackedWeights {
 public:
  PackedWeights();
  ~PackedWeights();
  PackedWeights(const PackedWeights&) = delete;
  PackedWeights& operator=(const PackedWeights&) = delete;

  void clear();          // drops the copies
  int64_t size() const;  // matrices packed

  struct Store;  // the copies and the primitives that read them (packed_weights.cpp)
  Store& store() { return *store_; }

 private:
  std::unique_ptr<Store> store_;
};

// GEMMs whose B lies inside f32 [n] read it from `weights` (see above). The f32 array must not change while a
// context holds the view; n = 0: no packed weights (a pass that does not pack).
struct PackedWeightsView {
  const float* f32 = nullptr;  // [n]
  int64_t n = 0;
  PackedWeights* weights = nullptr;
};

// C [M,N] (row stride ldc) = A [M,K] (row stride lda) · Bᵀ, B [N,K] (row stride ldb), from B's packed copy, when
// `packed` covers B and all three are dense (lda = ldb = K, ldc = N: oneDNN reads blocked weights only then); false,
// with C untouched, when not.
bool packed_gemm_nt(const PackedWeightsView& packed, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                    const float* B, int64_t ldb, float* C, int64_t ldc);

}  // namespace moelab::cpu
