#include "backend/cpu/gemm_bf16.h"

#include <omp.h>

#include <algorithm>
#include <bit>
#include <dnnl.hpp>
#include <map>
#include <tuple>
#include <vector>

#include "backend/cpu/dnnl_context.h"
#include "core/error.h"
#include "core/grow.h"

namespace moelab::cpu {

namespace {

// out [out_rows, out_cols] row-major = x [rows, cols] (row stride ld) rounded to bf16, zero beyond rows and cols.
// The copy keeps x's layout (a transposed operand stays transposed and oneDNN reads it so): a straight pass that
// vectorises, where a transposing copy would not. `out` serves matrices of every size, so it only grows.
void convert(const float* x, int64_t ld, int64_t rows, int64_t cols, int64_t out_rows, int64_t out_cols,
             std::vector<uint16_t>& out) {
  grow_to(out, out_rows * out_cols);
  uint16_t* o = out.data();
#pragma omp parallel for schedule(static) if (out_rows * out_cols >= (1 << 14))
  for (int64_t r = 0; r < out_rows; ++r) {
    uint16_t* row = o + r * out_cols;
    const int64_t valid = r < rows ? cols : 0;
    const float* in = x + r * ld;
#pragma omp simd
    for (int64_t c = 0; c < valid; ++c) row[c] = to_bf16(in[c]);
    for (int64_t c = valid; c < out_cols; ++c) row[c] = 0;
  }
}

// convert() into `own`, or, inside a Bf16ReuseRegion, into a kept copy, found again when a later GEMM of the region
// asks for the same matrix in the same padded layout.
const uint16_t* converted(const ComputeContext& ctx, const float* x, int64_t ld, int64_t rows, int64_t cols,
                          int64_t out_rows, int64_t out_cols, std::vector<uint16_t>& own) {
  if (!ctx.reuse_copies) {
    convert(x, ld, rows, cols, out_rows, out_cols, own);
    return own.data();
  }
  if (const Bf16Copies::Copy* kept = ctx.copy_store->find(x, ld, rows, cols, out_rows, out_cols))
    return kept->data.data();
  Bf16Copies::Copy& c = ctx.copy_store->add(x, ld, rows, cols, out_rows, out_cols);
  convert(x, ld, rows, cols, out_rows, out_cols, c.data);
  return c.data.data();
}

// Everything a primitive is built for: rows, N, depth, the bf16 operands' layouts, ldc, alpha and beta.
using Key = std::tuple<int64_t, int64_t, int64_t, bool, bool, int64_t, int64_t, int64_t, uint32_t, uint32_t>;

// rows x N x Kp from bf16 operands: op(A) is [rows, Kp] row-major (stride Kp) or, when ta, the transpose of a
// [Kp, a_ld] row-major matrix; op(B) is the transpose of an [N, Kp] matrix (row stride b_ld) when tb, else a
// [Kp, N] matrix (row stride b_ld).
const Matmul& primitive(int64_t rows, int64_t N, int64_t Kp, bool ta, bool tb, int64_t a_ld, int64_t b_ld, int64_t ldc,
                        float alpha, float beta) {
  static std::map<Key, Matmul> cache;
  const Key key{rows, N, Kp, ta, tb, a_ld, b_ld, ldc, std::bit_cast<uint32_t>(alpha), std::bit_cast<uint32_t>(beta)};
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  using dims = dnnl::memory::dims;
  using dt = dnnl::memory::data_type;
  const dnnl::memory::desc a({rows, Kp}, dt::bf16, ta ? dims{1, a_ld} : dims{Kp, 1});
  const dnnl::memory::desc b({Kp, N}, dt::bf16, tb ? dims{1, b_ld} : dims{b_ld, 1});
  const dnnl::memory::desc c({rows, N}, dt::f32, dims{ldc, 1});
  dnnl::primitive_attr attr;
  if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
  if (beta != 0.0f) {
    dnnl::post_ops ops;
    ops.append_sum(beta);
    attr.set_post_ops(ops);
  }
  return cache.emplace(key, make_matmul(a, b, c, attr)).first->second;
}

}  // namespace

void to_bf16(const float* x, int64_t n, uint16_t* out) {
#pragma omp parallel for simd schedule(static) if (n >= (1 << 16))
  for (int64_t i = 0; i < n; ++i) out[i] = to_bf16(x[i]);
}

namespace {

// The operand copies outside a Bf16ReuseRegion: A [Mp,Kp] (or [Kp,Mp] as stored when transposed) and B [Kp,N] (or
// [N,Kp]), in bf16. They serve GEMMs of every size, so they only grow (convert()).
std::vector<uint16_t> g_a_bf16, g_b_bf16;

// An operand in bf16 as a primitive reads it, with its row stride.
struct Bf16Operand {
  const uint16_t* data;
  int64_t ld;
};

// op(B) [Kp, N] in bf16, for a depth K padded with zeros to Kp: the mirror's copy (where Kp must be K) or a
// converted copy. A transposed B is copied as stored, [N, Kp].
Bf16Operand b_operand(const ComputeContext& ctx, Trans tb, int64_t N, int64_t K, int64_t Kp, const float* B,
                      int64_t ldb) {
  const bool b_transposed = tb == Trans::T;
  if (ctx.mirror.covers(B, b_transposed ? N : K, b_transposed ? K : N, ldb)) {
    MOELAB_ASSERT(Kp == K, "a mirrored weight is read with its own depth");
    return {ctx.mirror.bf16 + (B - ctx.mirror.f32), ldb};
  }
  if (b_transposed) return {converted(ctx, B, ldb, N, K, N, Kp, g_b_bf16), Kp};
  return {converted(ctx, B, ldb, K, N, Kp, N, g_b_bf16), N};
}

// C[M,N] = alpha · op(A)[M,Kp] · op(B)[Kp,N] + beta · C from bf16 operands. op(A) is [rows, Kp] row-major (stride
// a.ld = Kp), its rows padded with zeros to a whole block, or, when ta, the transpose of a [Kp, a.ld] matrix.
//
// A primitive is built for one exact shape (oneDNN's AMX kernels need it; a run-time row count falls back to a
// slower kernel), and building one costs about 0.3-2 ms. An expert's row count and a weight gradient's depth
// (tokens) change every step, so shapes are bucketed to keep the cache small and warm: the callers pad the depth
// with zeros to a multiple of kBf16RowBlock where it varies, and the rows are split here into whole blocks and a
// remainder. The remainder runs as a full block of zero-padded A into a scratch C, whose valid rows are copied out:
// oneDNN's kernels for an odd row count are several times slower per row (58 rows take 2.3x as long as 64:
// moelab_bench --benchmark_filter=GemmBf16RowRemainder).
void multiply(bool ta, Bf16Operand a, bool tb, Bf16Operand b, int64_t M, int64_t N, int64_t Kp, float alpha, float beta,
              float* C, int64_t ldc) {
  constexpr int64_t kStep = kBf16RowBlock;
  const int64_t main_rows = M / kStep * kStep, tail_rows = M - main_rows;
  static std::vector<float> c_tail;  // [kStep, N]: the remainder's block of C
  // Rows [row0, row0 + rows) of C, or of the tail block (ldc N) when c_out is c_tail.
  const auto run = [&](int64_t row0, int64_t rows, float* c_out, int64_t c_ld) {
    const Matmul& p = primitive(rows, N, Kp, ta, tb, a.ld, b.ld, c_ld, alpha, beta);
    run_matmul(p, a.data + (ta ? row0 : row0 * a.ld), b.data, c_out);
  };
  float* tail_out = C + main_rows * ldc;  // [tail_rows, N], row stride ldc
  if (main_rows > 0) run(0, main_rows, C, ldc);
  if (tail_rows > 0) {
    grow_to(c_tail, kStep * N);
    if (beta != 0.0f)  // the sum post-op reads the block's old values
      for (int64_t r = 0; r < tail_rows; ++r) std::copy_n(tail_out + r * ldc, N, c_tail.data() + r * N);
    run(main_rows, kStep, c_tail.data(), N);
  }
  dnnl_stream().wait();
  for (int64_t r = 0; r < tail_rows; ++r) std::copy_n(c_tail.data() + r * N, N, tail_out + r * ldc);
}

}  // namespace

void gemm_bf16(const ComputeContext& ctx, Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha,
               const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  MOELAB_ASSERT(!omp_in_parallel(), "gemm_bf16 runs outside OpenMP parallel regions");
  if (M == 0 || N == 0) return;
  // The depth is padded to a whole block, except under a weight read from the mirror: a model dimension, fixed.
  const bool a_transposed = ta == Trans::T, b_transposed = tb == Trans::T;
  const bool b_mirrored = ctx.mirror.covers(B, b_transposed ? N : K, b_transposed ? K : N, ldb);
  const int64_t Kp = b_mirrored ? K : bf16_padded_rows(K);
  // A transposed operand is copied as stored, so [rows, cols] stored is [K, M] then; a matrix that one GEMM reads
  // as A and another as transposed A gets the same copy when both pad its rows to a block and its columns need
  // none.
  const int64_t Mp = bf16_padded_rows(M);
  const Bf16Operand a = a_transposed ? Bf16Operand{converted(ctx, A, lda, K, M, Kp, Mp, g_a_bf16), Mp}
                                     : Bf16Operand{converted(ctx, A, lda, M, K, Mp, Kp, g_a_bf16), Kp};
  multiply(a_transposed, a, b_transposed, b_operand(ctx, tb, N, K, Kp, B, ldb), M, N, Kp, alpha, beta, C, ldc);
}

void gemm_bf16(const ComputeContext& ctx, Bf16Rows A, Trans tb, int64_t N, float alpha, const float* B, int64_t ldb,
               float beta, float* C, int64_t ldc) {
  MOELAB_ASSERT(!omp_in_parallel(), "gemm_bf16 runs outside OpenMP parallel regions");
  if (A.rows == 0 || N == 0) return;
  if (A.cols == 0) return scale_by_beta(A.rows, N, beta, C, ldc);  // oneDNN refuses a matmul with no depth
  // A's columns are the depth, unpadded: B is read (or converted) at that depth.
  multiply(false, {A.data, A.cols}, tb == Trans::T, b_operand(ctx, tb, N, A.cols, A.cols, B, ldb), A.rows, N, A.cols,
           alpha, beta, C, ldc);
}

void gemm_bf16(const ComputeContext& ctx, int64_t M, float alpha, const float* A, int64_t lda, Bf16Rows B, float beta,
               float* C, int64_t ldc) {
  MOELAB_ASSERT(!omp_in_parallel(), "gemm_bf16 runs outside OpenMP parallel regions");
  if (M == 0 || B.cols == 0) return;
  if (B.rows == 0) return scale_by_beta(M, B.cols, beta, C, ldc);  // oneDNN refuses a matmul with no depth
  // B's padded rows are the depth: Aᵀ's copy is padded to it with zeros.
  const int64_t Kp = bf16_padded_rows(B.rows), Mp = bf16_padded_rows(M);
  const Bf16Operand a{converted(ctx, A, lda, B.rows, M, Kp, Mp, g_a_bf16), Mp};
  multiply(true, a, false, {B.data, B.cols}, M, B.cols, Kp, alpha, beta, C, ldc);
}

}  // namespace moelab::cpu
