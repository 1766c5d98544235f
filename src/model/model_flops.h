// Model FLOPs per token, counted as the PyTorch peer (bench/compare_with_peer.py) counts them: training 6 x the
// active matmul parameters (attention projections, router, top_k experts per MoE layer, the LM head) plus 12·L·T·q
// for attention, q = n_heads x head_dim (d in the peer's shapes); inference 2 x active + 4·L·T·q. Every layer counts
// as MoE, as in the peer. Model-FLOP utilisation = tokens/s x this / peak FLOP/s.
#pragma once

#include <cstdint>

#include "moelab/config.h"

namespace moelab {

double model_flops_per_token(const Config& cfg, int64_t seq_len, bool training);

}  // namespace moelab
