// The designs a run chooses among (include/moelab/config.h holds the choice), typed: code switches on these, never on
// names. Each is read and written as the name DesignNames gives it, in enumerator order; an unknown name is refused
// where it is read (a TOML file, --set, a checkpoint's config.json), naming the valid ones. docs/routing.md
// describes the routing designs.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

namespace moelab {

enum class RouterKind { Learned, Frozen, Resampled, Hash };              // where router weights come from
enum class Gating { Softmax, Sigmoid };                                  // how router logits become scores
enum class SelectionRule { TopK, TopP, ExpertChoice, TopKThenSoftmax };  // which experts a token uses
enum class Granularity { Token, Sequence, Prefix };                      // what a routing decision sees
enum class Precision { F32, Bf16 };                                      // the inputs of the training GEMMs
enum class QkNorm { None, PerHead, Whole };                              // an RMSNorm of the queries and keys

template <class Design>
struct DesignNames;
template <>
struct DesignNames<RouterKind> {
  static constexpr std::array<std::string_view, 4> names = {"learned", "frozen", "resampled", "hash"};
};
template <>
struct DesignNames<Gating> {
  static constexpr std::array<std::string_view, 2> names = {"softmax", "sigmoid"};
};
template <>
struct DesignNames<SelectionRule> {
  static constexpr std::array<std::string_view, 4> names = {"top_k", "top_p", "expert_choice", "top_k_then_softmax"};
};
template <>
struct DesignNames<Granularity> {
  static constexpr std::array<std::string_view, 3> names = {"token", "sequence", "prefix"};
};
template <>
struct DesignNames<Precision> {
  static constexpr std::array<std::string_view, 2> names = {"f32", "bf16"};
};

template <>
struct DesignNames<QkNorm> {
  static constexpr std::array<std::string_view, 3> names = {"none", "per_head", "whole"};
};

// "top_k" for SelectionRule::TopK: the name a config writes.
template <class Design>
constexpr std::string_view name_of(Design value) {
  return DesignNames<Design>::names[static_cast<size_t>(value)];
}

}  // namespace moelab
