// The dispatch plan: the router's decision as one value. The selection rules (top-k, top-p, expert choice) and hash
// routing produce it, sequence expansion and capacity transform it; dispatch, combine, the auxiliary losses,
// statistics and traces consume it and know nothing of the rule that made it.
//
// A token owns any number of slots (0 included: a dropped slot is simply absent). A slot is one (token, expert,
// weight) triple. The slots, in token order, are the "slot order"; grouped by expert they are the "row order" of
// the expert-grouped activation buffers that dispatch fills and the experts read. Example with N=2, E=3:
//   token 0 -> experts {2, 0}, token 1 -> expert {2}:
//   token_offsets {0,2,3}, slot_expert {2,0,2}, expert_offsets {0,1,1,3}, row_slot {1,0,2}, row_token {0,0,1}.
//
// A selection rule fills n_tokens, n_experts, token_offsets, slot_expert and slot_weight, then calls
// build_expert_groups. Vectors are resized, never shrunk, so a plan reused across steps stops allocating once warm.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace moelab::routing {

template <typename T>
struct DispatchPlan {
  int64_t n_tokens = 0;
  int64_t n_experts = 0;
  std::vector<int32_t> token_offsets;   // [N+1] token t owns slots [token_offsets[t], token_offsets[t+1])
  std::vector<int32_t> slot_expert;     // [S]
  std::vector<T> slot_weight;           // [S] gate weight multiplying the expert output in combine
  std::vector<int32_t> expert_offsets;  // [E+1] expert e owns grouped rows [expert_offsets[e], expert_offsets[e+1])
  std::vector<int32_t> row_slot;        // [S] grouped row -> slot (rows of one expert in increasing token order)
  std::vector<int32_t> slot_row;        // [S] slot -> grouped row
  std::vector<int32_t> row_token;       // [S] grouped row -> token

  int64_t n_slots() const { return static_cast<int64_t>(slot_expert.size()); }
  // Rows (= tokens) routed to expert e.
  int64_t expert_rows(int64_t e) const { return expert_offsets[e + 1] - expert_offsets[e]; }
  // The most rows any one expert has: what a buffer reused expert by expert must hold.
  int64_t max_expert_rows() const {
    int64_t most = 0;
    for (size_t e = 0; e + 1 < expert_offsets.size(); ++e) most = std::max<int64_t>(most, expert_rows(e));
    return most;
  }
};

// Fills expert_offsets, row_slot, slot_row and row_token from token_offsets and slot_expert by a stable counting
// sort: an expert's rows follow slot order, hence increasing token order.
template <typename T>
void build_expert_groups(DispatchPlan<T>& plan);

// The backward of every rule whose slot weights are the raw probabilities of their experts (top-p, expert choice):
// d_probs[t, e] = the gradient of t's slot for expert e, 0 for experts t does not use. d_probs [N,E] is assigned.
template <typename T>
void raw_weight_backward(T* d_probs /*[N,E]*/, const T* d_slot_weight /*[S]*/, const DispatchPlan<T>& plan);

}  // namespace moelab::routing
