// Counter-based random numbers. Every random draw in moelab is a pure function of (seed, stream, counter), so a
// run can be resumed at any step without saving generator state, and results do not depend on thread count.
// The mixer is SplitMix64 (Steele, Lea, Flood 2014), a well-studied 64-bit finaliser.
#pragma once

#include <cmath>
#include <cstdint>
#include <string_view>

namespace moelab {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A stable stream id for a name (FNV-1a): the same name draws the same numbers in every run and on every machine.
inline uint64_t name_hash(std::string_view name) {
  uint64_t h = 1469598103934665603ull;
  for (const unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  return h;
}

// A sequential generator over one stream: seed and stream pick the sequence, next() walks it.
class Rng {
 public:
  Rng(uint64_t seed, uint64_t stream) : key_(splitmix64(seed ^ splitmix64(stream + 0x51ED270B27ull))) {}

  uint64_t next_u64() { return splitmix64(key_ + (counter_++) * 0x9E3779B97F4A7C15ull); }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  // Uniform integer in [0, n); the modulo bias is below 2^-40 for every n this project uses.
  uint64_t below(uint64_t n) { return next_u64() % n; }
  // Standard normal by Box-Muller (one value per call: simple and stateless beyond the counter).
  double normal() {
    double u1 = uniform();
    double u2 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  uint64_t key_;
  uint64_t counter_ = 0;
};

}  // namespace moelab
