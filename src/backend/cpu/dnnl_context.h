// The oneDNN CPU engine and stream that every primitive of the CPU backend runs on (one of each per process).
#pragma once

#include <dnnl.hpp>

namespace moelab::cpu {

dnnl::engine& dnnl_engine();
dnnl::stream& dnnl_stream();

}  // namespace moelab::cpu
