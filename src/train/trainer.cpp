#include "train/trainer.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/op_profile.h"
#include "core/version.h"
#include "data/loader.h"
#include "eval/perplexity.h"
#include "eval/routing_tally.h"
#include "io/atomic_file.h"
#include "model/config.h"
#include "model/memory_estimate.h"
#include "model/model.h"
#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/expert_grad_norms.h"
#include "train/grad_clip.h"
#include "train/metrics_log.h"
#include "train/progress.h"
#include "train/run_folder.h"
#include "train/schedule.h"
#include "train/stop_requests.h"

namespace moelab {

namespace {

std::string format_eval(const EvalResult& r, int64_t step) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "eval step %lld: val loss %.4f perplexity %.2f (%lld tokens)",
                static_cast<long long>(step), r.loss, r.perplexity, static_cast<long long>(r.tokens));
  return buf;
}

// What a run stopped by a non-finite value leaves behind. The checkpoint of step s holds the weights step s + 1
// trains on, so only a step that runs on them with a finite loss and gradient vouches for it: the newest checkpoint
// may hold the weights that gave the non-finite value (a learning rate that blew them up in one update).
std::string checkpoints_left(const std::string& last_good, const std::string& newest) {
  std::string s = "the last good checkpoint (whose weights then gave a finite loss and gradient) is " +
                  (last_good.empty() ? std::string("none") : last_good);
  if (!newest.empty() && newest != last_good) s += "; " + newest + " holds the weights that gave this value";
  return s;
}

}  // namespace

GradientNorm measure_gradients(const Model& model, double max_norm) {
  profile::Scope p("clip_grad_norm", 0);
  const double norm = model.grad_norm();
  return {norm, clip_factor(norm, max_norm)};
}

// Applies the decoupled weight decay per tensor group and one AdamW step to the whole model. The same pass rounds
// the new weights into a bf16 model's copy and zeroes the gradients (Model::optimizer_access).
void optimizer_step(Model& model, OptimizerState& opt, const TrainConfig& tc, double lr, int64_t t, float clip_factor) {
  profile::Scope p("optimizer (AdamW)", 0);
  const Model::OptimizerAccess w = model.optimizer_access();
  for (const auto& spec : model.table().specs()) {
    if (!spec.trainable) {  // no gradient reaches it; zeroed anyway, as optimizer_access() requires
      std::fill_n(w.grads + spec.offset, spec.numel, 0.0f);
      continue;
    }
    const double decay = decays(tc, spec.group) ? tc.weight_decay : 0.0;
    const AdamWHyper h{lr, tc.beta1, tc.beta2, tc.adam_eps, decay, t, clip_factor};
    const AdamWAlso also{w.params_bf16 ? w.params_bf16 + spec.offset : nullptr, /*zero_grads=*/true};
    adamw_step(w.params + spec.offset, w.grads + spec.offset, opt.exp_avg.data() + spec.offset,
               opt.exp_avg_sq.data() + spec.offset, spec.numel, h, also);
  }
}

TrainOutcome train(Config cfg, const std::string& resume, bool overwrite) {
  if (cfg.train.threads > 0) omp_set_num_threads(static_cast<int>(cfg.train.threads));
  const auto& tc = cfg.train;
  // Everything that can refuse the run is checked before the run folder is taken (a refused run leaves no folder)
  // and before anything large is allocated.
  const std::string ckpt = resume.empty() ? "" : resolve_checkpoint(resume);
  TrainState state;
  if (!ckpt.empty()) state = read_training_state(ckpt);
  if (!ckpt.empty() && state.step >= tc.steps)
    throw_error("--resume ", resume, ": the checkpoint is at step ", state.step, " and train.steps is ", tc.steps,
                ": nothing left to train (train longer with --set train.steps=N)");
  const auto data = data::TokenData::open(cfg.data.dir);
  if (cfg.model.vocab_size == 0) cfg.model.vocab_size = data.vocab_size();
  if (cfg.model.vocab_size != data.vocab_size())
    throw_error("vocab mismatch: the data folder ", cfg.data.dir, " has a tokenizer of ", data.vocab_size(),
                " tokens, the config (", cfg.source, ") says model.vocab_size = ", cfg.model.vocab_size);
  const data::TokenStream val = data::token_stream_from_split(data, "val", 0);
  check_scorable(val, 0);                       // before the run, not at its first evaluation
  check_memory_fits(cfg, MemoryUse::Training);  // with the vocabulary (embedding, LM head) known
  RunFolder run(tc.out_dir, {ckpt, state.step, overwrite});

  Model model(cfg);
  // Evaluations are a small part of a training run's time, and packed weights would add one more f32 copy of the
  // weights to its peak memory (about 17% on the default run).
  model.set_pack_weights_for_inference(false);
  OptimizerState opt;
  if (!ckpt.empty()) {
    load_model_weights(ckpt, model);
    load_training_state(ckpt, model, opt, state);
    std::fprintf(stderr, "resuming from %s at step %lld\n", ckpt.c_str(), static_cast<long long>(state.step));
  } else {
    model.init_params(tc.seed);
    opt.exp_avg.assign(model.params().size(), 0.0f);
    opt.exp_avg_sq.assign(model.params().size(), 0.0f);
  }

  nlohmann::json run_config = config_to_json(cfg);
  run_config["moelab_version"] = kVersion;  // which moelab trained it (the checkpoints' config.json is settings only)
  write_file_atomic(tc.out_dir + "/config.json", run_config.dump(2) + "\n");
  MetricsLog metrics(tc.out_dir + "/metrics.jsonl", state.step);
  Progress progress(state.step, tc.steps);

  const int64_t B = tc.batch_size, T = tc.seq_len, tokens_per_step = B * T * tc.grad_accum;
  std::vector<int32_t> batch(B * (T + 1)), inputs(B * T), targets(B * T);
  TrainOutcome outcome;
  outcome.checkpoint = ckpt;         // the newest checkpoint of the run
  std::string last_good_checkpoint;  // see checkpoints_left

  // The raw gradient of each expert at the step an evaluation follows (before clipping), logged with it.
  nlohmann::json grad_norms_for_eval;
  auto evaluate = [&](int64_t step_done, int64_t max_tokens) {
    const EvalResult r = evaluate_perplexity(model, val, T, B, max_tokens, {});  // loss curves need no bits/byte
    if (!std::isfinite(r.loss))
      throw_error("step ", step_done, ": the validation loss is ", r.loss, "; training stopped, ",
                  checkpoints_left(last_good_checkpoint, outcome.checkpoint));
    nlohmann::json rec = to_json(r);
    rec["type"] = "eval", rec["step"] = step_done;
    if (!grad_norms_for_eval.is_null()) rec["expert_grad_norm"] = grad_norms_for_eval;
    metrics.write(rec);
    progress.message(format_eval(r, step_done));
    return r;
  };

  for (int64_t step = state.step; step < tc.steps; ++step) {
    const auto t0 = std::chrono::steady_clock::now();
    const double lr = learning_rate(tc, step);
    model.resample_routers(tc.seed, step);
    model.zero_grads();
    Losses sum;
    RoutingTally routing;  // over the step's micro-batches
    for (int64_t micro = 0; micro < tc.grad_accum; ++micro) {
      data::sample_train_batch(data, tc.seed, step, micro, B, T, batch.data());
      for (int64_t b = 0; b < B; ++b) {
        std::copy_n(batch.begin() + b * (T + 1), T, inputs.begin() + b * T);
        std::copy_n(batch.begin() + b * (T + 1) + 1, T, targets.begin() + b * T);
      }
      const Losses l = model.forward(inputs.data(), targets.data(), B, T);
      if (!std::isfinite(l.total))
        throw_error("step ", step + 1, ": the loss is ", l.total, " (cross-entropy ", l.ce,
                    "); training stopped without saving, ", checkpoints_left(last_good_checkpoint, outcome.checkpoint));
      model.backward(1.0 / tc.grad_accum);
      if (state.step + 1 == tc.steps || (state.step + 1) % tc.log_every == 0) routing.add(model);
      sum.ce += l.ce / tc.grad_accum, sum.load_balance += l.load_balance / tc.grad_accum;
      sum.z_loss += l.z_loss / tc.grad_accum, sum.entropy += l.entropy / tc.grad_accum;
      sum.total += l.total / tc.grad_accum;
    }
    const bool last = step + 1 == tc.steps;
    const bool eval_now = last || (tc.eval_every > 0 && (step + 1) % tc.eval_every == 0);
    grad_norms_for_eval = eval_now ? expert_grad_norms(model) : nlohmann::json();
    const auto [grad_norm, clip] = measure_gradients(model, tc.grad_clip);
    if (!std::isfinite(grad_norm))
      throw_error("step ", step + 1, ": the gradient norm is ", grad_norm, "; training stopped without saving, ",
                  checkpoints_left(last_good_checkpoint, outcome.checkpoint));
    last_good_checkpoint = outcome.checkpoint;
    optimizer_step(model, opt, tc, lr, step + 1, clip);
    model.update_selection_bias();
    state.step = step + 1;
    state.tokens_seen += tokens_per_step;

    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double tokens_per_s = tokens_per_step / seconds;
    const bool log_now = state.step % tc.log_every == 0 || state.step == tc.steps;
    if (log_now) {
      metrics.write({{"type", "train"},
                     {"step", state.step},
                     {"loss", sum.total},
                     {"ce_loss", sum.ce},
                     {"load_balance_loss", sum.load_balance},
                     {"z_loss", sum.z_loss},
                     {"dynamic_loss", sum.entropy},
                     {"lr", lr},
                     {"grad_norm", grad_norm},
                     {"tokens_per_s", tokens_per_s},
                     {"tokens", state.tokens_seen},
                     {"routing", routing.to_json(cfg.routing.top_k)}});
    }
    progress.update(step, sum.ce, lr, tokens_per_s, log_now);

    if (eval_now && !last) evaluate(state.step, tc.eval_tokens);
    // A stop request (stop_requests.h) is taken here, between steps: one more checkpoint, then out.
    const int stop_signal = stop_requested();
    if (stop_signal != 0 || last || (tc.checkpoint_every > 0 && state.step % tc.checkpoint_every == 0)) {
      outcome.checkpoint = run.save_checkpoint(model, opt, state);
      progress.message("checkpoint " + outcome.checkpoint);
    }
    if (stop_signal != 0 && !last) {
      progress.message("interrupted: stopped cleanly after step " + std::to_string(state.step) +
                       "; continue with --resume " + tc.out_dir);
      outcome.stopped_by_signal = stop_signal;
      outcome.steps_done = state.step;
      return outcome;
    }
  }
  progress.finish();
  outcome.steps_done = state.step;
  outcome.final_val_loss = evaluate(state.step, 0).loss;  // the whole split
  return outcome;
}

}  // namespace moelab
