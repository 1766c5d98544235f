#!/usr/bin/python3
"""moelab against the PyTorch peer, side by side on the same machine and the same model shapes.

Runs moelab's end-to-end benchmark (bench/bench_training_step.cpp) and the peer (torch_moe_ref.py, in its fastest
launch preset) alternately, --repeats times each, and prints median training and inference tokens/s, the
moelab/peer ratios, and moelab's achieved model FLOP/s as a fraction of the peak you pass.

  bench/compare_with_peer.py --peer ../shared/peer/torch_moe_ref.py --peak-gflops 231 [--shapes small large]

Model FLOPs are counted as the peer counts them (6 x active matmul parameters + 12 L T d per training token).
"""
import argparse
import json
import statistics
import subprocess
import sys

SHAPES = {
    "small": {"bench": "Small", "peer": []},
    "large": {"bench": "Large", "peer": ["--d-model", "512", "--n-layers", "8", "--n-heads", "8", "--n-experts", "16",
                                          "--expert-hidden", "1408", "--seq-len", "512", "--batch-size", "4"]},
}


def run_moelab(binary, shape):
    out = subprocess.run([binary, f"--benchmark_filter=(TrainStep|Forward){shape}/", "--benchmark_format=json"],
                         check=True, capture_output=True, text=True).stdout
    result = {}
    for b in json.loads(out)["benchmarks"]:
        kind = "train" if "TrainStep" in b["name"] else "infer"
        result[kind + "_tokens_per_s"] = b["tokens/s"]
        result[kind + "_gflops"] = b["FLOP/s"] / 1e9
    return result


def run_peer(script, args, steps):
    out = subprocess.run(["/usr/bin/python3", script, "--mode", "both", "--steps", str(steps)] + args,
                         check=True, capture_output=True, text=True).stdout
    d = json.loads(out.strip().splitlines()[-1])
    return {"train_tokens_per_s": d["train_tokens_per_s"], "infer_tokens_per_s": d["infer_tokens_per_s"],
            "train_gflops": d["train_achieved_gflops"], "infer_gflops": d["infer_achieved_gflops"],
            "preset": d["env_preset"], "max_rss_mb": d["max_rss_mb"]}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--peer", required=True, help="path to torch_moe_ref.py")
    p.add_argument("--bench", default="build/release/bench/moelab_bench")
    p.add_argument("--peak-gflops", type=float, required=True, help="the machine's FP32 peak, for the fraction")
    p.add_argument("--shapes", nargs="+", default=["small", "large"], choices=sorted(SHAPES))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--peer-steps", type=int, default=10)
    a = p.parse_args()
    rows = []
    for shape in a.shapes:
        ours, peers = [], []
        for i in range(a.repeats):  # alternate so that drift in machine speed hits both alike
            print(f"{shape}: run {i + 1}/{a.repeats}", file=sys.stderr, flush=True)
            ours.append(run_moelab(a.bench, SHAPES[shape]["bench"]))
            peers.append(run_peer(a.peer, SHAPES[shape]["peer"], a.peer_steps))
        med = lambda runs, k: statistics.median(r[k] for r in runs)
        for kind in ("train", "infer"):
            m, q = med(ours, kind + "_tokens_per_s"), med(peers, kind + "_tokens_per_s")
            g = med(ours, kind + "_gflops")
            rows.append((shape, kind, m, q, m / q, g, g / a.peak_gflops, med(peers, kind + "_gflops") / a.peak_gflops))
    print(f"{'shape':6} {'mode':5} {'moelab tok/s':>12} {'peer tok/s':>11} {'ratio':>6} {'moelab GFLOP/s':>14} "
          f"{'moelab % peak':>13} {'peer % peak':>11}")
    for s, k, m, q, r, g, f, fp in rows:
        print(f"{s:6} {k:5} {m:12.0f} {q:11.0f} {r:6.2f} {g:14.1f} {100 * f:12.1f}% {100 * fp:10.1f}%")


if __name__ == "__main__":
    main()
