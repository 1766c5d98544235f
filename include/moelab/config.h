// The run configuration: every knob of a moelab run, with its default. Read from TOML (configs/*.toml), overridden
// with --set section.key=value, validated as a whole, and stored as JSON next to every checkpoint so that a
// checkpoint is self-describing. docs/config.md documents each field (default, meaning, trade-off). A relative path
// (data.dir, train.out_dir) is relative to the current directory; load_config reads one that a TOML file writes
// against the file's folder.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "moelab/designs.h"

namespace moelab {

struct DataConfig {
  std::string dir = "data/brown";  // a folder written by `moelab data`: meta.json, *.bin, tokenizer.model
};

struct ModelConfig {
  int64_t vocab_size = 0;  // 0: take it from the data folder's meta.json
  int64_t d_model = 256;
  int64_t n_layers = 4;
  int64_t n_heads = 4;
  int64_t n_kv_heads = 0;         // 0: equal to n_heads (plain multi-head); fewer: grouped-query attention
  int64_t head_dim = 0;           // width of one attention head; 0: d_model / n_heads
  QkNorm qk_norm = QkNorm::None;  // RMSNorm of each query and key: per head (Qwen3) or over all heads (OLMoE)
  bool qkv_bias = false;          // the q, k and v projections have biases (Qwen2)
  double clip_qkv = 0.0;          // > 0: q, k and v clamped to [-clip_qkv, clip_qkv] (OLMoE); 0: off
  double rope_theta = 10000.0;
  double rms_eps = 1e-6;
  double init_std = 0.02;       // N(0, init_std^2) for every matrix; norms start at 1
  bool tie_embeddings = false;  // LM head shares the token embedding matrix
  int64_t max_seq_len = 256;    // longest context the model is used with (generation truncates to it)
};

struct MoeConfig {
  int64_t n_experts = 8;
  int64_t expert_hidden = 704;       // SwiGLU intermediate size of one expert
  int64_t first_dense_layers = 0;    // the first layers use a dense SwiGLU FFN instead of experts
  int64_t moe_every = 1;             // after those, every moe_every-th layer is MoE, the others dense
  int64_t dense_hidden = 0;          // hidden size of dense FFN layers; 0: expert_hidden * routing.top_k
  int64_t n_shared_experts = 0;      // experts every token of a MoE layer uses, besides its routed ones (DeepSeekMoE)
  int64_t shared_expert_hidden = 0;  // hidden size of one shared expert; 0: expert_hidden
  bool shared_expert_gate = false;   // scale the shared experts' output by sigmoid(w . x) per token (Qwen2-MoE)
  std::vector<int64_t> dense_layers =
      {};  // layers that are dense whatever the rule above says (Qwen's mlp_only_layers)
};

struct RoutingConfig {
  RouterKind router = RouterKind::Learned;
  Gating gating = Gating::Softmax;
  SelectionRule rule = SelectionRule::TopK;
  int64_t top_k = 2;
  bool renormalize = true;  // divide the k kept probabilities by their sum (Mixtral) or keep them raw
  double top_p = 0.4;       // rule = top_p: keep experts until their cumulative probability exceeds p
  int64_t max_k = 0;        // rule = top_p: at most this many experts per token; 0: no cap
  Granularity granularity = Granularity::Token;
  double capacity_factor = 0.0;     // 0: dropless; > 0: at most ceil(cf * T * k / E) slots per expert
  double load_balance_coef = 0.01;  // Switch load-balance loss, averaged over MoE layers
  double z_loss_coef = 0.001;       // router z-loss, averaged over MoE layers
  double dynamic_loss_coef = 0.0;   // paper 2's entropy ("dynamic") loss, averaged over MoE layers
  double bias_update_rate = 0.0;    // loss-free balancing (DeepSeek-V3): selection-bias step per update; 0: off
};

struct TrainConfig {
  int64_t seq_len = 256;
  int64_t batch_size = 8;     // sequences per micro-batch
  int64_t grad_accum = 1;     // micro-batches per optimizer step
  int64_t steps = 600;        // optimizer steps
  double lr = 1e-3;           // peak learning rate
  double min_lr_ratio = 0.1;  // cosine decays to lr * min_lr_ratio
  int64_t warmup_steps = 50;  // linear warmup from lr/warmup_steps to lr
  double weight_decay = 0.1;  // decoupled (AdamW)
  double beta1 = 0.9;
  double beta2 = 0.95;
  double adam_eps = 1e-8;
  bool decay_norms = false;      // apply weight decay to RMSNorm gains
  bool decay_router = true;      // apply weight decay to router weights
  bool decay_embeddings = true;  // apply weight decay to the token embedding (and untied LM head)
  double grad_clip = 1.0;        // global-norm clipping threshold; 0 disables
  uint64_t seed = 1234;
  int64_t eval_every = 100;        // steps between evaluations; 0: only at the end
  int64_t eval_tokens = 32768;     // validation tokens per evaluation during training; 0: the whole split
  int64_t checkpoint_every = 200;  // steps between checkpoints; 0: only at the end
  int64_t log_every = 10;          // steps between metrics lines
  std::string out_dir = "runs/brown-tiny";
  int64_t threads = 0;                   // 0: all cores
  Precision precision = Precision::F32;  // GEMM inputs: f32, or bf16 (f32 accumulation, weights and optimizer)
};

struct Config {
  DataConfig data;
  ModelConfig model;
  MoeConfig moe;
  RoutingConfig routing;
  TrainConfig train;
  std::string source;  // where this config came from (file path), for error messages; not a setting
};

}  // namespace moelab
