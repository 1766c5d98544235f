// AdamW (Loshchilov & Hutter): Adam with decoupled weight decay, exactly as torch.optim.AdamW computes it:
//   p -= lr * wd * p;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
//   p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)          (t = 1-based step count)
// with g = grad_scale * grads: gradient clipping's factor is applied here, in the pass AdamW makes anyway, rather
// than in a pass of its own over every gradient (the same float product either way).
#pragma once

#include <cstdint>

namespace moelab {

struct AdamWHyper {
  double lr;
  double beta1;
  double beta2;
  double eps;
  double weight_decay;      // 0 for tensors that are not decayed
  int64_t t;                // 1-based step number (bias correction)
  double grad_scale = 1.0;  // multiplies every gradient (clipping); 1 leaves them as they are
};

// What the same pass may also do while each element is at hand (the trainer's step, Model::optimizer_access):
// write the new weight rounded to bf16 into a copy, and zero the gradient it read. Either saves a pass of its own
// over every parameter, which on the large shape is a few percent of a step (AdamW is memory-bound).
struct AdamWAlso {
  uint16_t* params_bf16 = nullptr;  // [n] receives to_bf16(new params) when not null
  bool zero_grads = false;          // leaves grads [n] at 0
};

template <typename T>
void adamw_step(T* params /*[n]*/, T* grads /*[n]*/, T* m /*[n]*/, T* v /*[n]*/, int64_t n, const AdamWHyper& h,
                const AdamWAlso& also = {});

}  // namespace moelab
