#include "backend/cpu/gemm_bf16.h"

#include <omp.h>

#include <bit>
#include <map>
#include <tuple>
#include <vector>

#include <dnnl.hpp>

#include "core/error.h"

namespace moelab::cpu {

namespace {

GemmPrecision g_precision = GemmPrecision::F32;

// op(X)[r, c] of a stored matrix (row stride ld), transposed when t: what the copies below read.
inline float at(const float* x, int64_t ld, Trans t, int64_t r, int64_t c) { return t == Trans::T ? x[c * ld + r] : x[r * ld + c]; }

// The bf16 copies always have the layout oneDNN's AMX kernels run fastest on, whatever the transposes asked for:
// op(A) as [M,K] row-major, op(B) as its transpose [N,K] row-major (a linear layer's weight). Transposing while
// rounding costs nothing extra: every element is read and written once either way.
void convert_a(const float* A, int64_t lda, Trans ta, int64_t M, int64_t K, std::vector<uint16_t>& out) {
  out.resize(M * K);
  uint16_t* o = out.data();
#pragma omp parallel for schedule(static) if (M * K >= (1 << 15))
  for (int64_t i = 0; i < M; ++i)
    for (int64_t p = 0; p < K; ++p) o[i * K + p] = to_bf16(at(A, lda, ta, i, p));
}

void convert_b(const float* B, int64_t ldb, Trans tb, int64_t K, int64_t N, std::vector<uint16_t>& out) {
  out.resize(N * K);
  uint16_t* o = out.data();
#pragma omp parallel for schedule(static) if (N * K >= (1 << 15))
  for (int64_t j = 0; j < N; ++j)
    for (int64_t p = 0; p < K; ++p) o[j * K + p] = to_bf16(at(B, ldb, tb, p, j));
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
  convert_a(A, lda, ta, M, K, a_bf16);
  convert_b(B, ldb, tb, K, N, b_bf16);
  const Primitive& p = primitive(M, N, K, alpha, beta, ldc);
  dnnl::memory a(p.a, engine(), a_bf16.data()), b(p.b, engine(), b_bf16.data()), c(p.c, engine(), C);
  p.matmul.execute(stream(), {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
  stream().wait();
}

}  // namespace moelab::cpu
