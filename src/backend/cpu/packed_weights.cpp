#include "backend/cpu/packed_weights.h"

#include <omp.h>

#include <cstdint>
#include <dnnl.hpp>
#include <map>
#include <tuple>

#include "backend/cpu/dnnl_context.h"
#include "core/error.h"

namespace moelab::cpu {

namespace {

using dims = dnnl::memory::dims;
using dt = dnnl::memory::data_type;

// A primitive is built for one exact row count: oneDNN's matmul with a run-time row count runs a kernel that does
// not read blocked weights. Building one takes 0.05-0.3 ms and keeps about 46 KB of generated code, and an
// evaluation meets hundreds of expert row counts (1,286 distinct shapes over Brown's validation split on the
// default model, which made `moelab eval` 3% slower than sgemm), so rows run as a multiple of kRowStep and a
// tail of fewer rows: one primitive per multiple in use and at most 15 tails per weight shape. The tail reads the
// weight a second time (250 rows: 410 GFLOP/s against 425 for 256). The cache is bounded all the same: when full it
// is emptied.
constexpr size_t kMaxPrimitives = 512;
constexpr int64_t kRowStep = 16;

}  // namespace

struct PackedWeights::Store {
  // (address, N, K) -> B [N,K] in the blocked layout of the primitives' weights.
  std::map<std::tuple<const float*, int64_t, int64_t>, dnnl::memory> copies;
  // (M, N, K, lda, ldc) -> C [M,N] = A [M,K] · B, B read from a packed copy.
  std::map<std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>, Matmul> primitives;
};

PackedWeights::PackedWeights() : store_(std::make_unique<Store>()) {}
PackedWeights::~PackedWeights() = default;

void PackedWeights::clear() { store_->copies.clear(); }  // the primitives depend on shapes only: they stay

int64_t PackedWeights::size() const { return static_cast<int64_t>(store_->copies.size()); }

namespace {

const Matmul& primitive(PackedWeights::Store& store, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldc) {
  const auto key = std::make_tuple(M, N, K, lda, ldc);
  auto it = store.primitives.find(key);
  if (it != store.primitives.end()) return it->second;
  const dnnl::memory::desc a({M, K}, dt::f32, dims{lda, 1});
  const dnnl::memory::desc b({K, N}, dt::f32, dnnl::memory::format_tag::any);  // the layout oneDNN reads fastest
  const dnnl::memory::desc c({M, N}, dt::f32, dims{ldc, 1});
  return store.primitives.emplace(key, make_matmul(a, b, c)).first->second;
}

}  // namespace

bool packed_gemm_nt(const PackedWeightsView& packed, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                    const float* B, int64_t ldb, float* C, int64_t ldc) {
  // oneDNN 2.6 runs strided operands on a kernel that does not read blocked weights: dense rows only.
  if (packed.n == 0 || omp_in_parallel() || lda != K || ldb != K || ldc != N) return false;
  const auto address = [](const float* p) { return reinterpret_cast<uintptr_t>(p); };
  if (address(B) < address(packed.f32) || address(B + N * K) > address(packed.f32 + packed.n)) return false;
  PackedWeights::Store& store = packed.weights->store();
  const int64_t main_rows = M / kRowStep * kRowStep, tail_rows = M - main_rows;
  // Emptied before looking either primitive up, never between: the first must outlive the second's creation.
  if (store.primitives.size() + 2 > kMaxPrimitives) store.primitives.clear();
  const Matmul& first = primitive(store, main_rows > 0 ? main_rows : tail_rows, N, K, lda, ldc);
  auto copy = store.copies.find({B, N, K});
  if (copy == store.copies.end()) {
    // op(B) [K,N] is the transpose of the stored [N,K]: strides (1, ldb).
    dnnl::memory plain(dnnl::memory::desc({K, N}, dt::f32, dims{1, ldb}), dnnl_engine(), const_cast<float*>(B));
    dnnl::memory blocked(first.b, dnnl_engine());
    dnnl::reorder(plain, blocked).execute(dnnl_stream(), plain, blocked);
    copy = store.copies.emplace(std::make_tuple(B, N, K), blocked).first;
  }
  const Matmul* tail = tail_rows > 0 && main_rows > 0 ? &primitive(store, tail_rows, N, K, lda, ldc) : nullptr;
  // oneDNN chose the blocked layout from (K, N) alone on every shape tried; should a row count ever make it choose
  // another, that call runs on sgemm rather than read the copy in the wrong layout.
  if (copy->second.get_desc() != first.b || (tail && copy->second.get_desc() != tail->b)) return false;
  run_matmul(first, A, copy->second, C);  // rows [0, main_rows), or all when there is no main part
  if (tail) run_matmul(*tail, A + main_rows * lda, copy->second, C + main_rows * ldc);
  dnnl_stream().wait();
  return true;
}

}  // namespace moelab::cpu
