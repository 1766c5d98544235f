#include "core/op_profile.h"

#include <omp.h>

#include <map>

#include "core/error.h"

namespace moelab::profile {

namespace {

bool g_enabled = false;
std::vector<OpStats> g_ops;             // in first-seen order
std::map<std::string, size_t> g_index;  // name -> position in g_ops

}  // namespace

void set_enabled(bool on) { g_enabled = on; }
bool enabled() { return g_enabled; }

void reset() {
  g_ops.clear();
  g_index.clear();
}

std::vector<OpStats> snapshot() { return g_ops; }

void record(const char* name, double seconds, double flops) {
  MOELAB_ASSERT(!omp_in_parallel(), "profile scopes are opened outside OpenMP regions");
  auto [it, inserted] = g_index.try_emplace(name, g_ops.size());
  if (inserted) g_ops.push_back({name, 0, 0, 0});
  OpStats& s = g_ops[it->second];
  ++s.calls, s.seconds += seconds, s.flops += flops;
}

}  // namespace moelab::profile
