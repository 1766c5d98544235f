// Copies into memory that will not be read again soon, such as activations saved for the backward pass.
// A plain store to a line that is not in cache first reads the line, then writes it back later. Non-temporal
// stores write whole lines without reading them first, and leave the cache to the data being worked on.
// On the large shape, one layer of bf16 expert GEMMs writing their outputs straight to memory took 5.6 ms;
// writing into rows that stay in cache and streaming them out took 4.1-4.6 ms
// (moelab_bench --benchmark_filter=ExpertOutputToMemory).
#pragma once

#include <cstdint>

namespace moelab::cpu {

// dst[i] = src[i] for i < n. The ranges must not overlap. Uses every OpenMP thread for long copies. Call it
// outside OpenMP regions.
void stream_copy(float* dst /*[n]*/, const float* src /*[n]*/, int64_t n);
// bf16 values (a bf16 model's saved expert activations), the same way.
void stream_copy(uint16_t* dst /*[n]*/, const uint16_t* src /*[n]*/, int64_t n);
// The double path of the model (tests) has no speed to gain: a plain copy.
void stream_copy(double* dst /*[n]*/, const double* src /*[n]*/, int64_t n);

}  // namespace moelab::cpu
