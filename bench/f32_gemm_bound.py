#!/usr/bin/python3
"""How far an f32 training step could go if every GEMM ran as fast as it does alone with its operands hot in cache.

Times one step op by op (`moelab bench --json`) and every GEMM shape and layout of that step in isolation
(`moelab_bench --benchmark_filter=BM_SgemmStepLayouts`), then replaces each GEMM op's measured time by its FLOPs at
the isolated speed of its shape: a forward at the forward layout's speed, a backward half at the input gradient's
and half at the weight gradient's (their FLOPs are equal). Prints, per GEMM op, measured and isolated GFLOP/s, and
the step's model-FLOP utilisation: as measured; with the GEMMs at their isolated speeds; with that and every other
op taking no time at all (the GEMM library's ceiling for this step); and with only the GEMMs, attention's core and
AdamW left, the GEMMs at their speed in the step or alone (what fusing away every elementwise op, the loss and the
clipping could reach at best).

  bench/f32_gemm_bound.py --peak-gflops 480 [--shape small|large] [--steps 10] [--warmup 3]

Shapes are moelab bench's: rows per expert are taken as an even routing, 2 x 2048 tokens / experts.
"""
import argparse
import json
import subprocess

# d, expert hidden, rows per expert (2 t / E for t = 2048 tokens, top-2) of moelab bench's shapes; vocabulary 8192.
SHAPES = {"small": (256, 704, 512), "large": (512, 1408, 256)}
TOKENS, VOCAB = 2048, 8192
KEPT_OPS = ("fwd attention.core", "bwd attention.core", "optimizer (AdamW)")


def gemm_ops(d, h, r):
    """Profile op suffix -> (in, out, rows) of its linear layer; the keys are the op names after 'fwd '/'bwd '."""
    return {"ffn.gate_up_proj": (d, h, r), "ffn.down_proj": (h, d, r), "attention.qkv_proj": (d, d, TOKENS),
            "attention.out_proj": (d, d, TOKENS), "lm_head": (d, VOCAB, TOKENS)}


def layout_speeds(bench_binary):
    """(layout, M, N, K) -> GFLOP/s of BM_SgemmStepLayouts."""
    out = subprocess.run([bench_binary, "--benchmark_filter=BM_SgemmStepLayouts", "--benchmark_format=json",
                          "--benchmark_min_time=0.5"], check=True, capture_output=True, text=True).stdout
    speeds = {}
    for b in json.loads(out)["benchmarks"]:
        # name: BM_SgemmStepLayouts/layout:0/M:512/N:704/K:256/real_time
        fields = dict(part.split(":") for part in b["name"].split("/")[1:] if ":" in part)
        speeds[tuple(int(fields[k]) for k in ("layout", "M", "N", "K"))] = b["FLOP/s"] / 1e9
    return speeds


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--moelab", default="build/release/moelab")
    p.add_argument("--bench", default="build/release/bench/moelab_bench")
    p.add_argument("--peak-gflops", type=float, required=True, help="the machine's FP32 peak")
    p.add_argument("--shape", default="small", choices=sorted(SHAPES))
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    a = p.parse_args()

    step = json.loads(subprocess.run(
        [a.moelab, "bench", "--shape", a.shape, "--precision", "f32", "--steps", str(a.steps), "--warmup",
         str(a.warmup), "--peak-gflops", str(a.peak_gflops), "--json"],
        check=True, capture_output=True, text=True).stdout)
    speeds = layout_speeds(a.bench)
    shapes = gemm_ops(*SHAPES[a.shape])
    model_gflop = step["model_gflops"] * step["step_seconds"]  # model FLOPs of one step, in GFLOP

    print(f"{a.shape} f32 training step: {1000 * step['step_seconds']:.1f} ms, "
          f"{100 * step['model_flops_utilisation']:.1f}% of the {a.peak_gflops:.0f} GFLOP/s peak\n")
    print(f"{'GEMM op':28} {'ms':>7} {'GFLOP/s':>8} {'alone GFLOP/s':>14} {'alone ms':>9}")
    gemm_ms = gemm_alone_ms = 0.0
    for op in step["ops"]:
        direction, _, name = op["op"].partition(" ")
        if name not in shapes:
            continue
        n_in, n_out, rows = shapes[name]
        if direction == "fwd":
            alone = speeds[(0, rows, n_out, n_in)]
        else:  # half input gradient, half weight gradient: the time of each half at its own speed
            alone = 2 / (1 / speeds[(1, rows, n_in, n_out)] + 1 / speeds[(2, n_out, n_in, rows)])
        ms, alone_ms = 1000 * op["seconds_per_step"], 1000 * op["gflop_per_step"] / alone
        gemm_ms, gemm_alone_ms = gemm_ms + ms, gemm_alone_ms + alone_ms
        print(f"{op['op']:28} {ms:7.2f} {1000 * op['gflop_per_step'] / ms:8.0f} {alone:14.0f} {alone_ms:9.2f}")
    step_ms = 1000 * step["step_seconds"]
    other_ms = step_ms - gemm_ms
    # The work no fusion removes: attention's own products and AdamW's pass over the parameters and moments.
    kept_ms = sum(1000 * op["seconds_per_step"] for op in step["ops"] if op["op"] in KEPT_OPS)
    util = lambda ms: 100 * model_gflop / (ms / 1000) / a.peak_gflops
    print(f"\nGEMMs {gemm_ms:.1f} ms of the step ({gemm_alone_ms:.1f} alone); attention and AdamW {kept_ms:.1f} ms; "
          f"everything else {other_ms - kept_ms:.1f} ms")
    print(f"model-FLOP utilisation: measured {util(step_ms):.1f}%; GEMMs at their speed alone "
          f"{util(gemm_alone_ms + other_ms):.1f}%; and nothing else taking any time {util(gemm_alone_ms):.1f}%")
    print(f"with every op but the GEMMs, attention and AdamW taking no time: GEMMs as in the step "
          f"{util(gemm_ms + kept_ms):.1f}%, GEMMs at their speed alone {util(gemm_alone_ms + kept_ms):.1f}%")


if __name__ == "__main__":
    main()
