// Per-op wall time and FLOPs of the engine, for `moelab bench`: each op call site of the model opens a
// profile::Scope naming the op and the FLOPs it does. While profiling is enabled the scope adds its wall time and
// FLOPs to a table keyed by name; otherwise it costs a load and a branch. Scopes are leaves (an op, not a
// sublayer), opened on the calling thread outside OpenMP regions (the ops parallelise inside), so the times add
// up to the step without double counting. FLOPs count the useful multiply-adds (2 per), e.g. the causal half of
// attention's scores; elementwise ops count 0 (their cost is memory, reported as time only).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace moelab::profile {

struct OpStats {
  std::string name;  // "fwd attention.qkv_proj"
  int64_t calls = 0;
  double seconds = 0;
  double flops = 0;
};

void set_enabled(bool on);
bool enabled();
void reset();
// Every op seen since the last reset, in the order first seen.
std::vector<OpStats> snapshot();

void record(const char* name, double seconds, double flops);

class Scope {
 public:
  Scope(const char* name, double flops) : name_(enabled() ? name : nullptr), flops_(flops) {
    if (name_) start_ = std::chrono::steady_clock::now();
  }
  ~Scope() {
    if (name_) record(name_, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(), flops_);
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  const char* name_;
  double flops_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace moelab::profile
