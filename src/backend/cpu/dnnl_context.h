// The oneDNN CPU engine and stream that every primitive of the CPU backend runs on (one of each per process), and
// the matmul primitives the backend caches: built for one shape, run with one scratchpad shared by all of them
// (they run one at a time; left to oneDNN, each cached primitive would keep its own).
#pragma once

#include <dnnl.hpp>

namespace moelab::cpu {

dnnl::engine& dnnl_engine();
dnnl::stream& dnnl_stream();

// A matmul primitive and the descriptors of the operands it was built for.
struct Matmul {
  dnnl::memory::desc a, b, c, scratchpad;
  dnnl::matmul primitive;
};

// c = a · b under attr (output scales, post-ops), with the scratchpad left to the caller (run_matmul). b's
// descriptor is what the primitive reads: the one given, or oneDNN's choice where it was format `any`.
Matmul make_matmul(const dnnl::memory::desc& a, const dnnl::memory::desc& b, const dnnl::memory::desc& c,
                   dnnl::primitive_attr attr = {});

// Queues m on the stream with the shared scratchpad; the caller waits (dnnl_stream().wait()) before reading c.
void run_matmul(const Matmul& m, const void* a, const dnnl::memory& b, float* c);
void run_matmul(const Matmul& m, const void* a, const void* b, float* c);

}  // namespace moelab::cpu
