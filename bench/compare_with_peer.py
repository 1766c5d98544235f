#!/usr/bin/python3
"""moelab against the PyTorch peer, side by side on the same machine and the same model shapes.

Runs `moelab bench` and the peer (torch_moe_ref.py, in its fastest launch preset) alternately in a rotating order, --repeats times
each, for every shape and precision, and prints median training and inference tokens/s, the moelab/peer ratios
(against the peer at the same precision and against the peer's best precision: on a CPU with AMX the peer's
bf16 autocast is faster than its f32), achieved model FLOP/s as a
fraction of the FP32 peak you pass, each side's spread over its runs (a wide one flags a run that shared the
cores), and peak resident memory per training token of a step.

  bench/compare_with_peer.py --peer ../shared/peer/torch_moe_ref.py --peak-gflops 473 \\
      [--shapes small large] [--precisions f32 bf16] [--repeats 3] [--baseline OTHER_MOELAB] [--json FILE]

--baseline runs a second moelab binary (e.g. one built from the commit before a change) in the same rounds and adds
a table of this build against it: a change's speed effect measured side by side with the peer, in one run.

bf16 is moelab's train.precision = "bf16" (bf16 GEMM inputs, f32 accumulation, f32 master weights and AdamW) and
the peer's --autocast-bf16 (torch.autocast on the CPU). Model FLOPs are counted as the peer counts them
(6 x active matmul parameters + 12 L T d per training token; 2 x and 4 L T d for inference).
"""
import argparse
import json
import statistics
import subprocess
import sys

SHAPES = {
    "small": {"tokens": 8 * 256, "peer": []},
    "large": {"tokens": 4 * 512,
              "peer": ["--d-model", "512", "--n-layers", "8", "--n-heads", "8", "--n-experts", "16",
                       "--expert-hidden", "1408", "--seq-len", "512", "--batch-size", "4"]},
}


def run_moelab(binary, shape, precision, peak, steps, warmup):
    result = {}
    for kind, extra in (("train", []), ("infer", ["--forward"])):
        out = subprocess.run([binary, "bench", "--shape", shape, "--precision", precision, "--steps", str(steps),
                              "--warmup", str(warmup), "--peak-gflops", str(peak), "--json"] + extra,
                             check=True, capture_output=True, text=True).stdout
        d = json.loads(out)
        result[kind + "_tokens_per_s"] = d["tokens_per_s"]
        result[kind + "_gflops"] = d["model_gflops"]
        if kind == "train":
            result["max_rss_mb"] = d["max_rss_mb"]
    return result


def run_peer(script, shape, precision, steps):
    args = SHAPES[shape]["peer"] + (["--autocast-bf16"] if precision == "bf16" else [])
    out = subprocess.run(["/usr/bin/python3", script, "--mode", "both", "--steps", str(steps)] + args,
                         check=True, capture_output=True, text=True).stdout
    d = json.loads(out.strip().splitlines()[-1])
    return {"train_tokens_per_s": d["train_tokens_per_s"], "infer_tokens_per_s": d["infer_tokens_per_s"],
            "train_gflops": d["train_achieved_gflops"], "infer_gflops": d["infer_achieved_gflops"],
            "preset": d["env_preset"], "max_rss_mb": d["max_rss_mb"]}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--peer", required=True, help="path to torch_moe_ref.py")
    p.add_argument("--moelab", default="build/release/moelab")
    p.add_argument("--peak-gflops", type=float, required=True, help="the machine's FP32 peak, for the fraction")
    p.add_argument("--shapes", nargs="+", default=["small", "large"], choices=sorted(SHAPES))
    p.add_argument("--precisions", nargs="+", default=["f32", "bf16"], choices=["f32", "bf16"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=5, help="moelab's timed steps per run")
    p.add_argument("--warmup", type=int, default=5,
                   help="moelab's untimed steps first (bf16 builds its primitives for new shapes in the first steps)")
    p.add_argument("--peer-steps", type=int, default=10)
    p.add_argument("--baseline", help="another moelab binary to time in the same rounds, compared with --moelab")
    p.add_argument("--json", help="also write every run's numbers here")
    a = p.parse_args()
    med = lambda runs, k: statistics.median(r[k] for r in runs)
    # (max - min) / median of the runs, in %: a wide one says another process shared the cores during some run
    spread = lambda runs, k: 100 * (max(r[k] for r in runs) - min(r[k] for r in runs)) / med(runs, k)
    results = {}  # (shape, precision) -> (moelab runs, peer runs)
    baseline = {}  # (shape, precision) -> the --baseline binary's runs
    for shape in a.shapes:
        for precision in a.precisions:
            ours, peers, base = [], [], []
            runners = [(ours, lambda: run_moelab(a.moelab, shape, precision, a.peak_gflops, a.steps, a.warmup)),
                       (peers, lambda: run_peer(a.peer, shape, precision, a.peer_steps))]
            if a.baseline:
                runners.insert(1, (base, lambda: run_moelab(a.baseline, shape, precision, a.peak_gflops, a.steps,
                                                            a.warmup)))
            for i in range(a.repeats):
                # Alternate so that drift in machine speed hits all alike, and rotate the order: a run that follows
                # another is slower on this machine (the same binary measured 3-7% slower second in a pair), so each
                # program takes each place in turn (repeats a multiple of the programs compared).
                print(f"{shape} {precision}: run {i + 1}/{a.repeats}", file=sys.stderr, flush=True)
                k = i % len(runners)
                for runs, run in runners[k:] + runners[:k]:
                    runs.append(run())
            results[(shape, precision)] = (ours, peers)
            baseline[(shape, precision)] = base

    print(f"{'shape':6} {'prec':5} {'mode':5} {'moelab tok/s':>12} {'peer tok/s':>11} {'ratio':>6} "
          f"{'vs best peer':>12} {'moelab % peak':>13} {'peer % peak':>11} {'spread moelab/peer':>18}")
    noisy = False
    for (shape, precision), (ours, peers) in results.items():
        for kind in ("train", "infer"):
            key = kind + "_tokens_per_s"
            m, q = med(ours, key), med(peers, key)
            best = max(med(results[(shape, pr)][1], key) for pr in a.precisions)
            s_ours, s_peer = spread(ours, key), spread(peers, key)
            noisy |= max(s_ours, s_peer) > 10
            print(f"{shape:6} {precision:5} {kind:5} {m:12.0f} {q:11.0f} {m / q:6.2f} {m / best:12.2f} "
                  f"{100 * med(ours, kind + '_gflops') / a.peak_gflops:12.1f}% "
                  f"{100 * med(peers, kind + '_gflops') / a.peak_gflops:10.1f}% {s_ours:11.0f}% /{s_peer:4.0f}%")
    if noisy:
        print("\nA spread over 10%: some run shared the cores with another process; rerun on an idle machine.")
    presets = sorted({r["preset"] for _, peers in results.values() for r in peers})
    if presets != ["blis"]:
        print(f"\nThe peer ran with launch preset {', '.join(map(str, presets))}, not its fastest, blis (BLIS missing? "
              "apt-get install libblis-dev): a handicapped peer proves nothing; install it and rerun.")
    print(f"\n{'shape':6} {'prec':5} {'moelab KB/token':>15} {'peer KB/token':>13}   (peak RSS of a training run "
          f"over the tokens of one step)")
    for (shape, precision), (ours, peers) in results.items():
        tokens = SHAPES[shape]["tokens"]
        print(f"{shape:6} {precision:5} {med(ours, 'max_rss_mb') * 1024 / tokens:15.0f} "
              f"{med(peers, 'max_rss_mb') * 1024 / tokens:13.0f}")
    if a.baseline:
        print(f"\n{'shape':6} {'prec':5} {'mode':5} {'moelab tok/s':>12} {'baseline tok/s':>14} {'ratio':>6} "
              f"{'spread moelab/baseline':>22}   (--moelab {a.moelab} against --baseline {a.baseline})")
        for (shape, precision), (ours, _) in results.items():
            base = baseline[(shape, precision)]
            for kind in ("train", "infer"):
                key = kind + "_tokens_per_s"
                m, b = med(ours, key), med(base, key)
                print(f"{shape:6} {precision:5} {kind:5} {m:12.0f} {b:14.0f} {m / b:6.3f} "
                      f"{spread(ours, key):15.0f}% /{spread(base, key):4.0f}%")
    if a.json:
        with open(a.json, "w") as f:
            json.dump([{"shape": s, "precision": pr, "moelab": o, "peer": q, "baseline": baseline[(s, pr)]}
                       for (s, pr), (o, q) in results.items()], f, indent=2)


if __name__ == "__main__":
    main()
