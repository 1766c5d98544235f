#include "backend/cpu/gemm_bf16.h"

#include <omp.h>

#include <algorithm>
#include <bit>
#include <map>
#include <tuple>
#include <vector>

#include <dnnl.hpp>

#include "core/error.h"

namespace moelab::cpu {

namespace {

GemmPrecision g_precision = GemmPrecision::F32;

// out [rows, cols] row-major = X[r, c] in bf16, where X[r, c] is x[r * ld + c], or x[c * ld + r] when transposed.
// Square tiles keep both the reads and the writes of a transposing copy within a few cache lines per row.
void convert(const float* x, int64_t ld, bool transposed, int64_t rows, int64_t cols, std::vector<uint16_t>& out) {
  constexpr int64_t kTile = 64;
  out.resize(rows * cols);
  uint16_t* o = out.data();
  const int64_t row_tiles = (rows + kTile - 1) / kTile, col_tiles = (cols + kTile - 1) / kTile;
#pragma omp parallel for collapse(2) schedule(static) if (rows * cols >= (1 << 14))
  for (int64_t rt = 0; rt < row_tiles; ++rt)
    for (int64_t ct = 0; ct < col_tiles; ++ct) {
      const int64_t r1 = std::min(rows, (rt + 1) * kTile), c1 = std::min(cols, (ct + 1) * kTile);
      if (transposed) {
        for (int64_t c = ct * kTile; c < c1; ++c)
          for (int64_t r = rt * kTile; r < r1; ++r) o[r * cols + c] = to_bf16(x[c * ld + r]);
      } else {
        for (int64_t r = rt * kTile; r < r1; ++r)
          for (int64_t c = ct * kTile; c < c1; ++c) o[r * cols + c] = to_bf16(x[r * ld + c]);
      }
    }
}

struct Primitive {
  dnnl::memory::desc a, b, c;
  dnnl::matmul matmul;
};

using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, uint32_t, uint32_t>;

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& stream() {
  static dnnl::stream s(engine());
  return s;
}

const Primitive& primitive(int64_t M, int64_t N, int64_t K, float alpha, float beta, int64_t ldc) {
  static std::map<Key, Primitive> cache;
  const Key key{M, N, K, ldc, std::bit_cast<uint32_t>(alpha), std::bit_cast<uint32_t>(beta)};
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  using dt = dnnl::memory::data_type;
  // op(A) [M,K] row-major and op(B) [K,N] stored as [N,K] row-major: the bf16 copies' layouts.
  const dnnl::memory::desc a({M, K}, dt::bf16, dnnl::memory::dims{K, 1});
  const dnnl::memory::desc b({K, N}, dt::bf16, dnnl::memory::dims{1, K});
  const dnnl::memory::desc c({M, N}, dt::f32, dnnl::memory::dims{ldc, 1});
  dnnl::primitive_attr attr;
  if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
  if (beta != 0.0f) {
    dnnl::post_ops ops;
    ops.append_sum(beta);
    attr.set_post_ops(ops);
  }
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), attr, engine());
  return cache.emplace(key, Primitive{a, b, c, dnnl::matmul(pd)}).first->second;
}

}  // namespace

GemmPrecision gemm_precision() { return g_precision; }

GemmPrecisionScope::GemmPrecisionScope(GemmPrecision p) : saved_(g_precision) { g_precision = p; }
GemmPrecisionScope::~GemmPrecisionScope() { g_precision = saved_; }

uint16_t to_bf16(float x) {
  uint32_t bits = std::bit_cast<uint32_t>(x);
  bits += 0x7fffu + ((bits >> 16) & 1u);  // round to nearest, ties to even (finite inputs)
  return static_cast<uint16_t>(bits >> 16);
}

float from_bf16(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

void gemm_bf16(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  MOELAB_ASSERT(!omp_in_parallel(), "gemm_bf16 runs outside OpenMP parallel regions");
  if (M == 0 || N == 0) return;
  static std::vector<uint16_t> a_bf16, b_bf16;  // op(A) [M,K] and op(B)^T [N,K] in bf16
  // The copies have the layouts oneDNN's AMX kernels run fastest on, whatever the transposes asked for: op(A) as
  // [M,K] row-major, op(B) as its transpose [N,K] row-major (a linear layer's weight).
  convert(A, lda, ta == Trans::T, M, K, a_bf16);
  convert(B, ldb, tb == Trans::N, N, K, b_bf16);
  const Primitive& p = primitive(M, N, K, alpha, beta, ldc);
  dnnl::memory a(p.a, engine(), a_bf16.data()), b(p.b, engine(), b_bf16.data()), c(p.c, engine(), C);
  p.matmul.execute(stream(), {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
  stream().wait();
}

}  // namespace moelab::cpu
