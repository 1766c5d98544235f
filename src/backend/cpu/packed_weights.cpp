#include "backend/cpu/packed_weights.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <dnnl.hpp>
#include <map>
#include <tuple>
#include <vector>

#include "backend/cpu/dnnl_context.h"
#include "core/error.h"

namespace moelab::cpu {

namespace {

using dims = dnnl::memory::dims;
using dt = dnnl::memory::data_type;

struct Primitive {
  dnnl::memory::desc a, b, c, scratchpad;
  dnnl::matmul matmul;
};

// A primitive is built for one exact row count: oneDNN's matmul with a run-time row count runs a kernel that does
// not read blocked weights, and splitting rows into a bucketed main part and a tail reads the weight twice (10-15%
// slower on an expert's GEMMs). Building one takes 0.05-0.3 ms and keeps about 46 KB of generated code, so the
// cache is bounded: when full it is emptied and refilled by the row counts in use.
constexpr size_t kMaxPrimitives = 512;

}  // namespace

struct PackedWeights::Store {
  // (address, N, K) -> B [N,K] in the blocked layout of the primitives' weights.
  std::map<std::tuple<const float*, int64_t, int64_t>, dnnl::memory> copies;
  // (M, N, K, lda, ldc) -> C [M,N] = A [M,K] · B, B read from a packed copy.
  std::map<std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>, Primitive> primitives;
  std::vector<uint8_t> scratchpad;  // one for every primitive: they run one at a time
};

PackedWeights::PackedWeights() : store_(std::make_unique<Store>()) {}
PackedWeights::~PackedWeights() = default;

void PackedWeights::clear() { store_->copies.clear(); }  // the primitives depend on shapes only: they stay

int64_t PackedWeights::size() const { return static_cast<int64_t>(store_->copies.size()); }

namespace {

const float* g_f32 = nullptr;  // the PackedWeightsScope's array, or null
int64_t g_n = 0;
PackedWeights::Store* g_store = nullptr;

const Primitive& primitive(PackedWeights::Store& store, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldc) {
  const auto key = std::make_tuple(M, N, K, lda, ldc);
  auto it = store.primitives.find(key);
  if (it != store.primitives.end()) return it->second;
  if (store.primitives.size() == kMaxPrimitives) store.primitives.clear();
  const dnnl::memory::desc a({M, K}, dt::f32, dims{lda, 1});
  const dnnl::memory::desc b({K, N}, dt::f32, dnnl::memory::format_tag::any);  // the layout oneDNN reads fastest
  const dnnl::memory::desc c({M, N}, dt::f32, dims{ldc, 1});
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), attr, dnnl_engine());
  return store.primitives.emplace(key, Primitive{a, pd.weights_desc(), c, pd.scratchpad_desc(), dnnl::matmul(pd)})
      .first->second;
}

}  // namespace

PackedWeightsScope::PackedWeightsScope(const float* f32, int64_t n, PackedWeights& packed) {
  MOELAB_ASSERT(g_store == nullptr, "PackedWeightsScope does not nest");
  g_f32 = f32, g_n = n, g_store = packed.store_.get();
}

PackedWeightsScope::~PackedWeightsScope() { g_f32 = nullptr, g_n = 0, g_store = nullptr; }

bool packed_gemm_nt(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                    float* C, int64_t ldc) {
  if (g_store == nullptr || omp_in_parallel() || ldb != K) return false;
  const auto address = [](const float* p) { return reinterpret_cast<uintptr_t>(p); };
  if (address(B) < address(g_f32) || address(B + N * K) > address(g_f32 + g_n)) return false;
  PackedWeights::Store& store = *g_store;
  const Primitive& p = primitive(store, M, N, K, lda, ldc);
  auto copy = store.copies.find({B, N, K});
  if (copy == store.copies.end()) {
    // op(B) [K,N] is the transpose of the stored [N,K]: strides (1, ldb).
    dnnl::memory plain(dnnl::memory::desc({K, N}, dt::f32, dims{1, ldb}), dnnl_engine(), const_cast<float*>(B));
    dnnl::memory blocked(p.b, dnnl_engine());
    dnnl::reorder(plain, blocked).execute(dnnl_stream(), plain, blocked);
    copy = store.copies.emplace(std::make_tuple(B, N, K), blocked).first;
  }
  // oneDNN chose the blocked layout from (K, N) alone on every shape tried; should a row count ever make it choose
  // another, that call runs on sgemm rather than read the copy in the wrong layout.
  if (copy->second.get_desc() != p.b) return false;
  store.scratchpad.resize(std::max(store.scratchpad.size(), p.scratchpad.get_size()));
  dnnl::memory a(p.a, dnnl_engine(), const_cast<float*>(A)), c(p.c, dnnl_engine(), C),
      s(p.scratchpad, dnnl_engine(), store.scratchpad.data());
  p.matmul.execute(dnnl_stream(),
                   {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, copy->second}, {DNNL_ARG_DST, c}, {DNNL_ARG_SCRATCHPAD, s}});
  dnnl_stream().wait();
  return true;
}

}  // namespace moelab::cpu
