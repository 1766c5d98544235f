#include "backend/cpu/dnnl_context.h"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace moelab::cpu {

dnnl::engine& dnnl_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& dnnl_stream() {
  static dnnl::stream s(dnnl_engine());
  return s;
}

Matmul make_matmul(const dnnl::memory::desc& a, const dnnl::memory::desc& b, const dnnl::memory::desc& c,
                   dnnl::primitive_attr attr) {
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), attr, dnnl_engine());
  return {a, pd.weights_desc(), c, pd.scratchpad_desc(), dnnl::matmul(pd)};
}

void run_matmul(const Matmul& m, const void* a, const dnnl::memory& b, float* c) {
  static std::vector<uint8_t> scratchpad;
  scratchpad.resize(std::max(scratchpad.size(), m.scratchpad.get_size()));
  dnnl::memory ma(m.a, dnnl_engine(), const_cast<void*>(a)), mc(m.c, dnnl_engine(), c);
  dnnl::memory ms(m.scratchpad, dnnl_engine(), scratchpad.data());
  m.primitive.execute(dnnl_stream(),
                      {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, mc}, {DNNL_ARG_SCRATCHPAD, ms}});
}

void run_matmul(const Matmul& m, const void* a, const void* b, float* c) {
  run_matmul(m, a, dnnl::memory(m.b, dnnl_engine(), const_cast<void*>(b)), c);
}

}  // namespace moelab::cpu
