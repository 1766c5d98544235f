#!/usr/bin/python3
"""An independent numpy oracle for the numbers of `moelab analyze report` (analysis.json).

Written from the analyses as docs/analysis.md states them and the documented formats (docs/traces.md,
docs/checkpoints.md, the to_json comments of src/analysis/*.h) with nothing shared with the C++ engine. Given a
checkpoint folder, the routing trace that `moelab analyze trace` wrote for the same tokens (same split and
--max-tokens) and the report's analysis.json, it recomputes every number that is a function of the trace, the
expert weights or the metrics log, per MoE layer, and compares:
  - routing statistics: the slots routed to each expert, experts per token (mean, histogram), by loss quantile
    (with the Spearman correlation), by class of each label channel (Brown: POS and genre);
  - specialisation: the expert x class contingency table of each label channel, its NMI (arithmetic
    normalisation, natural log) and purity; the z-score from the reported baseline; the p-value's form;
  - the loss by class of each label channel (a target's class is that of the token it predicts);
  - static expert analysis: flattened and neuron-averaged cosine similarity (gate, up, down), router-row
    similarity, the linear fit router ~ neuron-averaged on the strict lower triangles (slope, intercept, r^2),
    the neuron reorderings (a permutation, cosines before and after, Kendall tau, mean matched similarity, and
    optimality against our own Hungarian algorithm), the PCA of experts and of neurons;
  - health: per-expert Frobenius norms, the whole-expert cosine, collapsed pairs, token counts, dead/rare experts;
  - active parameters (from the tensor sizes in model.safetensors) against top-k;
  - the course of experts per token and the per-expert gradient norms, from the run's metrics.jsonl.
Not checked: the dynamic expert analysis and the prompt maps (they need each layer's input, which only a forward
pass of the model gives; tests/oracle/torch_model.py covers that forward pass).

  /usr/bin/python3 tests/oracle/analysis_oracle.py --checkpoint CKPT --trace TRACE_DIR --analysis ANALYSIS_JSON
  /usr/bin/python3 tests/oracle/analysis_oracle.py --self-test

Prints one line per quantity: its largest deviation over all MoE layers and its tolerance; exits 1 when any
exceeds its tolerance or an input is inconsistent (a missing key, a shape that differs), 0 otherwise. Tolerances:
  exact    0       integers (counts, histograms, ids, labels, permutations);
  counts   1e-9    relative, for doubles computed from exact integers or from the trace's float32 losses (NMI,
                   purity, means, Spearman): both sides sum in double, so only the summation order (~1e-15)
                   separates them;
  weights  1e-6    relative to the largest |value| of the quantity, for doubles computed from the float32 weights
                   (cosines, norms, fits, PCA): both sides read the same float32 values and accumulate in double, so
                   they agree to ~1e-14; the margin covers ill-conditioned fits (an r^2 near 0 magnifies rounding),
                   yet a wrong axis, a missing term or a float32 accumulation shows (averaging the neurons in
                   float32 moved an r^2 by 6e-6 relative);
  float32  1e-5    absolute, for the mean matched neuron similarity, which the engine takes from a float32 GEMM of
                   float32-rounded unit neurons (relative error ~1e-6 per cosine).
Needs only /usr/bin/python3 with numpy (Debian's python3-numpy); safetensors is parsed by hand.
"""

import argparse
import itertools
import json
import math
import os
import re
import sys

import numpy as np

from safetensors_file import OracleError, SafetensorsFile

TOL_EXACT, TOL_COUNTS, TOL_WEIGHTS, TOL_FLOAT32 = 0.0, 1e-9, 1e-6, 1e-5


# ---------------------------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------------------------

def resolve_checkpoint(path):
    """A checkpoint folder, or a run folder's latest checkpoint (checkpoints/latest names it)."""
    if os.path.exists(os.path.join(path, "model.safetensors")):
        return path
    latest = os.path.join(path, "checkpoints", "latest")
    if os.path.exists(latest):
        with open(latest) as f:
            return os.path.join(path, "checkpoints", f.read().strip())
    raise OracleError(f"{path}: not a checkpoint (no model.safetensors) nor a run folder (no checkpoints/latest)")


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise OracleError(f"{path}: cannot read as JSON: {e}")


def load_trace(folder):
    """trace.json and its arrays (np.load reads the .npy files)."""
    index = load_json(os.path.join(folder, "trace.json"))
    arrays = {}
    for name, spec in index["arrays"].items():
        a = np.load(os.path.join(folder, spec["file"]))
        if list(a.shape) != spec["shape"] or a.dtype != np.dtype(spec["dtype"]):
            raise OracleError(f"{folder}/{spec['file']}: {a.dtype} {list(a.shape)}, trace.json says "
                              f"{spec['dtype']} {spec['shape']}")
        arrays[name] = a
    return index, arrays


def as_array(v):
    """A JSON value (numbers, nested lists, null) as a float64 array, null as NaN."""
    def conv(x):
        if isinstance(x, list):
            return [conv(y) for y in x]
        return np.nan if x is None else x
    return np.asarray(conv(v), dtype=np.float64)


def get(obj, *keys):
    """obj[k0][k1]... naming the missing key."""
    for i, k in enumerate(keys):
        try:
            obj = obj[k]
        except (KeyError, IndexError, TypeError):
            raise OracleError(f"analysis.json: missing {'/'.join(map(str, keys[:i + 1]))}")
    return obj


# ---------------------------------------------------------------------------------------------------------------
# comparison
# ---------------------------------------------------------------------------------------------------------------

class Checker:
    """Largest deviation per quantity over all layers; a quantity fails when any deviation exceeds its tolerance.
    relative: the deviation is divided by the largest |expected| value (as max_rel_error in tests/support), at
    least 1e-6 so that a quantity that is 0 (an NMI without specialisation) is not held to rounding noise."""

    def __init__(self):
        self.rows = {}  # name -> [worst deviation, tolerance, kind, where, note]
        self.order = []

    def _row(self, name, tol, kind):
        if name not in self.rows:
            self.rows[name] = [0.0, tol, kind, "", ""]
            self.order.append(name)
        return self.rows[name]

    def values(self, name, got, want, tol, where, relative=False):
        row = self._row(name, tol, "relative" if relative else "absolute")
        try:
            g, w = as_array(got), as_array(want)
        except (ValueError, TypeError) as e:  # ragged lists, strings where numbers belong
            self.fail(name, f"{where}: not comparable as numbers: {e}")
            return
        if g.shape != w.shape:
            self.fail(name, f"{where}: shape {list(g.shape)}, expected {list(w.shape)}")
            return
        if g.size == 0:
            return
        both_nan = np.isnan(g) & np.isnan(w)
        dev = np.where(both_nan, 0.0, np.abs(g - w))
        dev = np.where(np.isnan(dev), np.inf, dev)  # one side NaN (null), the other a number
        if relative:
            finite = w[np.isfinite(w)]
            dev = dev / max(1e-6, float(np.max(np.abs(finite))) if finite.size else 1.0)
        i = int(np.argmax(dev))
        if dev.flat[i] > row[0] or not row[3]:
            at = np.unravel_index(i, dev.shape) if dev.ndim else ()
            row[0] = max(row[0], float(dev.flat[i]))
            row[3] = f"{where}{list(map(int, at)) if at else ''}: got {g.flat[i]!r}, expected {w.flat[i]!r}"

    def equal(self, name, got, want, where):
        """Exact equality of non-numeric values (names, labels, id lists)."""
        row = self._row(name, TOL_EXACT, "exact")
        if got != want:
            row[0] = math.inf
            row[3] = f"{where}: got {got!r}, expected {want!r}"

    def fail(self, name, message):
        row = self._row(name, TOL_EXACT, "exact")
        row[0] = math.inf
        row[3] = message

    def note(self, name, text):
        """A remark printed after the quantity's line (which values() has made)."""
        self.rows[name][4] = text

    def report(self):
        failed = 0
        for name in self.order:
            dev, tol, kind, where, note = self.rows[name]
            ok = dev <= tol
            failed += not ok
            line = f"{'ok  ' if ok else 'FAIL'} {name:<44} max dev {dev:<9.3g} tol {tol:g} ({kind})"
            if note:
                line += f"  [{note}]"
            if not ok:
                line += f"\n       worst at {where}"
            print(line)
        print(f"analysis_oracle: {len(self.order) - failed} of {len(self.order)} quantities agree"
              + (f", {failed} FAILED" if failed else ""))
        return failed == 0


# ---------------------------------------------------------------------------------------------------------------
# the computations, each from its definition
# ---------------------------------------------------------------------------------------------------------------

def contingency(experts, labels, E, C):
    """[E,C] slots of tokens with label c < C routed to expert e; experts [N,K] with -1 padding."""
    t, k = np.nonzero(experts >= 0)
    lab = labels[t].astype(np.int64)
    keep = lab < C
    return np.bincount(experts[t[keep], k[keep]].astype(np.int64) * C + lab[keep], minlength=E * C).reshape(E, C)


def nmi(counts):
    """I(X;Y) / ((H(X) + H(Y)) / 2) in nats; 0 when nothing is counted or both entropies are 0."""
    n = counts.sum()
    if n == 0:
        return 0.0
    p = counts / n
    px, py = p.sum(1), p.sum(0)
    h = lambda q: -np.sum(q[q > 0] * np.log(q[q > 0]))
    hsum = h(px) + h(py)
    if hsum <= 0:
        return 0.0
    nz = p > 0
    mi = np.sum(p[nz] * np.log(p[nz] / np.outer(px, py)[nz]))
    return max(mi, 0.0) / (hsum / 2)


def purity(counts):
    n = counts.sum()
    return counts.max(1).sum() / n if n else 0.0


def average_ranks(v):
    """1-based ranks, ties sharing the mean of their positions."""
    order = np.argsort(v, kind="stable")
    sv = v[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sv) != 0) + 1]
    ends = np.r_[starts[1:], len(v)]
    ranks = np.empty(len(v))
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + e - 1) / 2 + 1
    return ranks


def spearman(a, b):
    if len(a) < 2:
        return np.nan
    ra, rb = average_ranks(a), average_ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = np.sqrt(np.sum(ra * ra) * np.sum(rb * rb))
    return np.sum(ra * rb) / den if den > 0 else np.nan


def cosine_matrix(rows):
    """[E,E] cosine between rows [E,n] in float64; a zero row has cosine 0 with everything."""
    x = np.asarray(rows, dtype=np.float64)
    g = x @ x.T
    nrm = np.sqrt(np.diag(g))
    nn = np.outer(nrm, nrm)
    return np.where(nn > 0, g / np.where(nn > 0, nn, 1), 0.0)


def strict_lower(m):
    i, j = np.tril_indices(m.shape[0], -1)  # row by row: (1,0), (2,0), (2,1), ...
    return m[i, j]


def linear_fit(x, y):
    """(slope, intercept, r^2) of least squares y ~ x; NaN where undefined, as scipy's linregress."""
    if len(x) == 0:
        return np.nan, np.nan, np.nan
    dx, dy = x - x.mean(), y - y.mean()
    sxx, syy, sxy = np.sum(dx * dx), np.sum(dy * dy), np.sum(dx * dy)
    if not sxx > 0:
        return np.nan, np.nan, np.nan
    slope = sxy / sxx
    r2 = min(1.0, sxy * sxy / (sxx * syy)) if syy > 0 else np.nan
    return slope, y.mean() - slope * x.mean(), r2


def kendall_tau_vs_identity(perm):
    """Kendall tau of a permutation against 0..n-1 (no ties: (concordant - discordant) / pairs)."""
    p = np.asarray(perm)
    n = len(p)
    if n < 2:
        return np.nan
    s = np.sign(p[None, :] - p[:, None])[np.triu_indices(n, 1)]  # i < j: the identity is increasing
    return s.sum() / (n * (n - 1) / 2)


def hungarian_max(w):
    """The column matched to each row in a maximum-weight perfect matching of the square matrix w: the shortest
    augmenting path algorithm with potentials (Kuhn-Munkres, O(n^3)), on cost -w."""
    n = w.shape[0]
    cost = -np.asarray(w, dtype=np.float64)
    u, v = np.zeros(n + 1), np.zeros(n + 1)
    p = np.zeros(n + 1, dtype=np.int64)    # p[j]: row (1-based) matched to column j; column 0 is the free root
    way = np.zeros(n + 1, dtype=np.int64)
    for i in range(1, n + 1):
        p[0], j0 = i, 0
        minv = np.full(n + 1, np.inf)
        used = np.zeros(n + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = p[j0]
            cur = cost[i0 - 1] - u[i0] - v[1:]
            free = ~used[1:]
            better = free & (cur < minv[1:])
            minv[1:][better] = cur[better]
            way[1:][better] = j0
            cand = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(cand)) + 1
            delta = cand[j1 - 1]
            u[p[used]] += delta
            v[used] -= delta
            minv[~used] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    match = np.empty(n, dtype=np.int64)
    match[p[1:] - 1] = np.arange(n)
    return match


def pca(points, standardize, k=2):
    """(components [K,n], explained variance ratio [K], transform) of m points [m,n] by SVD: centred, divided by
    the sample std (ddof 1) when standardize (0 for a constant coordinate); a component without variance is 0; the
    sign makes each component's largest-|loading| entry (the first on ties) positive. transform maps points to
    coordinates; eigenvalues [all] are returned for the gap check."""
    x = np.asarray(points, dtype=np.float64)
    m, n = x.shape
    mean = x.mean(0)
    ssd = ((x - mean) ** 2).sum(0)
    inv = np.ones(n)
    if standardize:
        inv = np.where((ssd > 0) & (m > 1), np.sqrt((m - 1) / np.where(ssd > 0, ssd, 1)), 0.0)
    z = (x - mean) * inv
    total = float(np.sum(ssd * inv * inv))
    K = min(k, m, n)
    _, s, vt = np.linalg.svd(z, full_matrices=False)
    lam = s ** 2
    comps = vt[:K].copy()
    for j in range(K):
        if not lam[j] > total * 1e-12:
            comps[j] = 0
            continue
        if comps[j][int(np.argmax(np.abs(comps[j])))] < 0:
            comps[j] = -comps[j]
    ratio = lam[:K] / total if total > 0 else np.zeros(K)
    return comps, ratio, lambda pts: ((np.asarray(pts, dtype=np.float64) - mean) * inv) @ comps.T, lam


# ---------------------------------------------------------------------------------------------------------------
# the checks
# ---------------------------------------------------------------------------------------------------------------

KINDS = ("gate", "up", "down")


def check_score(ck, name, score, observed, where):
    """The observed value of a {"observed", "baseline_mean", "baseline_std", "z", "p_value"} score and the
    consistency of z and p with the reported baseline."""
    ck.values(f"{name} observed", get(score, "observed"), observed, TOL_COUNTS, where, relative=True)
    mean, std, z = as_array(score["baseline_mean"]), as_array(score["baseline_std"]), as_array(score["z"])
    want_z = (observed - mean) / std if np.isfinite(std) and std > 0 else np.nan
    ck.values(f"{name} z from its baseline", z, want_z, TOL_COUNTS, where, relative=True)


def check_specialisation(ck, name, spec, experts, labels, E, C, where):
    if spec is None:
        ck.fail(f"{name} contingency", f"{where}: null, but the trace has labels")
        return
    counts = contingency(experts, labels, E, C)
    ck.values(f"{name} contingency [E,C]", get(spec, "counts"), counts, TOL_EXACT, where)
    ck.values(f"{name} contingency slots, labelled tokens",
              [get(spec, "slots"), get(spec, "labelled_tokens"), get(spec, "experts"), get(spec, "labels")],
              [counts.sum(), int(np.sum(labels < C)), E, C], TOL_EXACT, where)
    check_score(ck, f"{name} NMI", get(spec, "nmi"), nmi(counts), where)
    check_score(ck, f"{name} purity", get(spec, "purity"), purity(counts), where)
    P = get(spec, "permutations")
    for key in ("nmi", "purity"):
        p = as_array(spec[key]["p_value"]) * (P + 1)
        if not (abs(p - round(p)) < 1e-9 and 1 <= round(p) <= P + 1):
            ck.fail(f"{name} p-values", f"{where} {key}: p_value {spec[key]['p_value']} is not (1 + j) / (1 + {P})")
        else:
            ck.values(f"{name} p-values", 0, 0, TOL_EXACT, where)


def check_grouped(ck, name, groups_json, ns, labels, names, where):
    groups = get(groups_json, "groups")
    ck.equal(f"{name} labels", [g["label"] for g in groups], list(names), where)
    tokens, means = [], []
    for c in range(len(names)):
        sel = labels == c
        tokens.append(int(sel.sum()))
        means.append(ns[sel].mean() if sel.any() else np.nan)
    ck.values(f"{name} tokens", [g["tokens"] for g in groups], tokens, TOL_EXACT, where)
    ck.values(f"{name} mean experts", [g["mean_experts"] for g in groups], means, TOL_COUNTS, where, relative=True)


def check_loss_by_label(ck, classes_json, loss, labels, names, where):
    """loss[t] predicts token t + 1: its class is labels[t + 1]; classes without a finite-loss target are absent."""
    target = labels[1:].astype(np.int64)
    lt = loss[:-1].astype(np.float64)
    keep = np.isfinite(lt) & (target < len(names))
    want = {}
    for c, name in enumerate(names):
        sel = keep & (target == c)
        if sel.any():
            want[name] = (int(sel.sum()), lt[sel].mean())
    ck.equal("classes with a target", sorted(classes_json.keys()), sorted(want.keys()), where)
    for name, (n, mean) in want.items():
        got = classes_json.get(name, {})
        ck.values("tokens", got.get("tokens"), n, TOL_EXACT, f"{where}, {name}")
        ck.values("loss", got.get("loss"), mean, TOL_COUNTS, f"{where}, {name}", relative=True)
        ck.values("perplexity", got.get("perplexity"), np.exp(mean), TOL_COUNTS, f"{where}, {name}", relative=True)


def check_by_loss(ck, groups_json, ns, loss, where):
    groups = get(groups_json, "groups")
    Q = len(groups)
    idx = np.flatnonzero(np.isfinite(loss))
    idx = idx[np.argsort(loss[idx], kind="stable")]
    M = len(idx)
    want = {"tokens": [], "mean_experts": [], "mean_loss": [], "loss_min": [], "loss_max": []}
    labels = []
    for q in range(Q):
        g = idx[q * M // Q:(q + 1) * M // Q]
        lg = loss[g].astype(np.float64)
        want["tokens"].append(len(g))
        want["mean_experts"].append(ns[g].mean() if len(g) else np.nan)
        want["mean_loss"].append(lg.mean() if len(g) else np.nan)
        want["loss_min"].append(lg.min() if len(g) else np.nan)
        want["loss_max"].append(lg.max() if len(g) else np.nan)
        labels.append(f"q{q + 1} ({lg.min():.2f}-{lg.max():.2f})" if len(g) else f"q{q + 1} (none)")
    ck.equal("by loss quantile labels", [g["label"] for g in groups], labels, where)
    ck.values("by loss quantile tokens", [g["tokens"] for g in groups], want["tokens"], TOL_EXACT, where)
    for key in ("mean_experts", "mean_loss", "loss_min", "loss_max"):
        ck.values(f"by loss quantile {key}", [g[key] for g in groups], want[key], TOL_COUNTS, where, relative=True)
    ck.values("by loss quantile Spearman", get(groups_json, "spearman"),
              spearman(loss[idx].astype(np.float64), ns[idx].astype(np.float64)), TOL_COUNTS, where, relative=True)


def check_static(ck, st, W, E, d, h, where):
    ck.values("static layer, E, d, h", [get(st, "layer"), st["experts"], st["d_model"], st["expert_hidden"]],
              [W["layer"], E, d, h], TOL_EXACT, where)
    flat = {"gate": W["w1"].reshape(E, -1), "up": W["w3"].reshape(E, -1), "down": W["w2"].reshape(E, -1)}
    avg = {"gate": W["w1"].mean(1), "up": W["w3"].mean(1), "down": W["w2"].mean(2)}  # [E,d]
    flat_sim = {k: cosine_matrix(flat[k]) for k in KINDS}
    avg_sim = {k: cosine_matrix(avg[k]) for k in KINDS}
    for k in KINDS:
        ck.values(f"flattened similarity {k}", get(st, "flattened_similarity", k), flat_sim[k], TOL_WEIGHTS,
                  where, relative=True)
        ck.values(f"neuron-averaged similarity {k}", get(st, "neuron_averaged_similarity", k), avg_sim[k],
                  TOL_WEIGHTS, where, relative=True)
    if W["router"] is None:
        ck.values("router similarity (hash: null)", 0 if st["router_similarity"] is None else 1, 0, TOL_EXACT, where)
    else:
        router_sim = cosine_matrix(W["router"])
        ck.values("router-row similarity", get(st, "router_similarity"), router_sim, TOL_WEIGHTS, where,
                  relative=True)
        y = strict_lower(router_sim)
        for k in KINDS:
            slope, intercept, r2 = linear_fit(strict_lower(avg_sim[k]), y)
            fit = get(st, "router_fit", k)
            ck.values(f"router ~ neuron-averaged {k}: r2", fit["r2"], r2, TOL_WEIGHTS, where, relative=True)
            ck.values(f"router ~ neuron-averaged {k}: slope, intercept", [fit["slope"], fit["intercept"]],
                      [slope, intercept], TOL_WEIGHTS, where, relative=True)

    # Neuron reorderings: neuron i = (w1 row i, w3 row i, w2 column i), matched by cosine.
    neurons = np.concatenate([W["w1"], W["w3"], W["w2"].transpose(0, 2, 1)], axis=2).astype(np.float64)  # [E,h,3d]
    nrm = np.linalg.norm(neurons, axis=2, keepdims=True)
    unit = np.where(nrm > 0, neurons / np.where(nrm > 0, nrm, 1), 0.0)
    for r in get(st, "reordering"):
        a, b, perm = r["a"], r["b"], np.asarray(r["permutation"])
        w = f"{where} pair ({a},{b})"
        if sorted(perm.tolist()) != list(range(h)):
            ck.fail("reordering permutation", f"{w}: not a permutation of 0..{h - 1}")
            continue
        ck.values("reordering permutation", 0, 0, TOL_EXACT, w)
        sim = unit[a] @ unit[b].T  # [h,h]
        for k in KINDS:
            before = flat_sim[k][a, b]
            if k == "down":
                pb = W["w2"][b][:, perm]
            else:
                pb = W["w1" if k == "gate" else "w3"][b][perm]
            after = cosine_matrix(np.stack([flat[k][a], pb.reshape(-1)]))[0, 1]
            ck.values(f"reordering cosine before/after {k}", [r["cosine_before"][k], r["cosine_after"][k]],
                      [before, after], TOL_WEIGHTS, w, relative=True)
        ck.values("reordering Kendall tau", r["kendall_tau"], kendall_tau_vs_identity(perm), TOL_COUNTS, w,
                  relative=True)
        matched = sim[np.arange(h), perm].mean()
        ck.values("reordering mean matched similarity", r["mean_matched_similarity"], matched, TOL_FLOAT32, w)
        best = sim[np.arange(h), hungarian_max(sim)].mean()
        # The engine's matching must be optimal: its total may fall short of ours only by float32 rounding.
        ck.values("reordering optimal (ours - engine's mean)", max(0.0, best - matched), 0.0, TOL_FLOAT32, w)

    for k in KINDS:
        comps, ratio, transform, lam = pca(flat[k], True)
        pe = get(st, "pca_experts", k)
        ck.values(f"PCA experts {k}: explained variance", pe["explained_variance_ratio"], ratio, TOL_WEIGHTS, where,
                  relative=True)
        check_pca_coords(ck, f"PCA experts {k}: coordinates", pe["coords"], transform(flat[k]), lam, where)
        pts = (W["w2"].transpose(0, 2, 1) if k == "down" else W["w1" if k == "gate" else "w3"]).reshape(E * h, d)
        comps, ratio, transform, lam = pca(pts, True)
        pn = get(st, "pca_neurons", k)
        ck.values(f"PCA neurons {k}: explained variance", pn["explained_variance_ratio"], ratio, TOL_WEIGHTS, where,
                  relative=True)
        keep = min(h, len(pn["neuron"]) // E) if E else 0
        want_neuron = [j * h // keep for _ in range(E) for j in range(keep)] if keep else []
        want_expert = [e for e in range(E) for _ in range(keep)]
        ck.values(f"PCA neurons {k}: kept experts and neurons", [pn["expert"], pn["neuron"]],
                  [want_expert, want_neuron], TOL_EXACT, where)
        kept = pts[np.asarray(want_expert, dtype=np.int64) * h + np.asarray(want_neuron, dtype=np.int64)]
        check_pca_coords(ck, f"PCA neurons {k}: coordinates", pn["coords"], transform(kept), lam, where)


def check_pca_coords(ck, name, got, want, lam, where):
    """Coordinates along components whose eigenvalue is within 1e-6 (relative) of another's are not compared:
    there the axis is not determined by the data (any rotation within the eigenspace is a valid answer)."""
    g = as_array(got)
    K = want.shape[1]
    top = lam[0] if len(lam) and lam[0] > 0 else 1.0
    ok_cols = [j for j in range(K)
               if all(abs(lam[j] - lam[i]) > 1e-6 * top for i in range(len(lam)) if i != j and lam[i] > 1e-12 * top)]
    if g.shape != want.shape:
        ck.fail(name, f"{where}: shape {list(g.shape)}, expected {list(want.shape)}")
        return
    ck.values(name, g[:, ok_cols], want[:, ok_cols], TOL_WEIGHTS, where, relative=True)
    if len(ok_cols) < K:
        ck.note(name, f"{K - len(ok_cols)} degenerate component(s) skipped")


def check_health(ck, hj, W, slots, E, where):
    w1, w3, w2 = (W[k].reshape(E, -1).astype(np.float64) for k in ("w1", "w3", "w2"))
    whole = np.concatenate([w1, w3, w2], axis=1)
    norms = {"norm_gate": np.linalg.norm(w1, axis=1), "norm_up": np.linalg.norm(w3, axis=1),
             "norm_down": np.linalg.norm(w2, axis=1), "norm_total": np.linalg.norm(whole, axis=1)}
    for key, v in norms.items():
        ck.values(f"health {key}", get(hj, key), v, TOL_WEIGHTS, where, relative=True)
    sim = cosine_matrix(whole)
    ck.values("health whole-expert cosine", get(hj, "whole_similarity"), sim, TOL_WEIGHTS, where, relative=True)
    thr = get(hj, "collapse_threshold")
    pairs = [(i, j) for i in range(E) for j in range(i + 1, E) if sim[i, j] > thr]
    ck.equal("health collapsed pairs", [(p["a"], p["b"]) for p in get(hj, "collapsed")], pairs, where)
    if [(p["a"], p["b"]) for p in hj["collapsed"]] == pairs:
        ck.values("health collapsed cosines", [p["cosine"] for p in hj["collapsed"]], [sim[i, j] for i, j in pairs],
                  TOL_WEIGHTS, where)
    ck.values("health tokens per expert", get(hj, "tokens"), slots, TOL_EXACT, where)
    total, frac = slots.sum(), get(hj, "rare_fraction")
    ck.equal("health dead, rare experts", [get(hj, "dead"), get(hj, "rare")],
             [[e for e in range(E) if slots[e] == 0], [e for e in range(E) if 0 < slots[e] < frac * total / E]],
             where)


def expert_weights(st, config, block):
    """Layer `block`'s router [E,d] (None for a hash router) and stacked w1, w3 [E,h,d], w2 [E,d,h], as float64
    (exact copies of the float32 values, so that numpy's reductions run in double as the engine's do)."""
    E = config["moe"]["n_experts"]
    m = f"model.layers.{block}.block_sparse_moe."

    def tensor(name):
        return st.read(name, "F32", None).astype(np.float64)

    return {"layer": block,
            "router": None if config["routing"]["router"] == "hash" else tensor(m + "gate.weight"),
            "w1": np.stack([tensor(f"{m}experts.{j}.w1.weight") for j in range(E)]),
            "w3": np.stack([tensor(f"{m}experts.{j}.w3.weight") for j in range(E)]),
            "w2": np.stack([tensor(f"{m}experts.{j}.w2.weight") for j in range(E)])}


def check_active_params(ck, a, st, config, moe_blocks, means):
    """Active parameters: every tensor but the routed experts, plus each MoE layer's measured experts per token
    times one expert's size; against top-k, min(top_k, E) experts per MoE layer."""
    routed = re.compile(r"^model\.layers\.(\d+)\.block_sparse_moe\.experts\.\d+\.")
    per_layer = {}
    shared = 0
    for name, (_, shape, _, _) in st.entries.items():
        mt = routed.match(name)
        if mt:
            per_layer[int(mt.group(1))] = per_layer.get(int(mt.group(1)), 0) + math.prod(shape)
        else:
            shared += math.prod(shape)
    E, k = config["moe"]["n_experts"], config["routing"]["top_k"]
    one = [per_layer.get(b, 0) / E for b in moe_blocks]
    active = shared + sum(m * o for m, o in zip(means, one))
    topk = shared + sum(min(k, E) * o for o in one)
    ck.values("active parameters", get(a, "active_params"), active, TOL_COUNTS, "model", relative=True)
    ck.values("active parameters of top-k", get(a, "active_params_topk"), topk, TOL_EXACT, "model")
    ck.values("active vs top-k", get(a, "active_vs_topk"), active / topk, TOL_COUNTS, "model", relative=True)


def check_metrics_log(ck, a, metrics_path, n_layers):
    """The course of experts per token and the per-expert gradient norms, re-read from metrics.jsonl."""
    if not os.path.exists(metrics_path):
        ck.values("training course (no metrics log: null)", 0 if a.get("training_course") is None else 1, 0,
                  TOL_EXACT, metrics_path)
        return
    steps, tokens, means, esteps, emeans, gsteps, gnorms = [], [], [], [], [], [], []
    layers = None
    with open(metrics_path) as f:
        for line in f:
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(r, dict):
                continue
            if r.get("type") in ("train", "eval") and "routing" in r:
                layers = [x["layer"] for x in r["routing"]]
                row = [x["mean_experts_per_token"] for x in r["routing"]]
                if r["type"] == "train":
                    steps.append(r["step"]), tokens.append(r.get("tokens", 0)), means.append(row)
                else:
                    esteps.append(r["step"]), emeans.append(row)
            if r.get("type") == "eval" and "expert_grad_norm" in r:
                gsteps.append(r.get("step", 0))
                gnorms.append([x["norms"] for x in r["expert_grad_norm"]])
    c = get(a, "training_course")
    ck.equal("course: layers, steps, tokens", [c["layers"], c["steps"], c["tokens"]],
             [layers or [], steps, tokens], metrics_path)
    ck.values("course: mean experts per token (train)", c["mean_experts"], np.asarray(means).T.tolist(),
              TOL_EXACT, metrics_path)
    ck.values("course: eval steps", c["eval_steps"], esteps, TOL_EXACT, metrics_path)
    ck.values("course: mean experts per token (eval)", c["eval_mean_experts"],
              np.asarray(emeans).T.tolist() if emeans else [[] for _ in range(n_layers)], TOL_EXACT, metrics_path)
    g = a.get("expert_grad_norms")
    if gsteps:
        ck.values("expert gradient norms: steps", get(a, "expert_grad_norms", "steps"), gsteps, TOL_EXACT,
                  metrics_path)
        ck.values("expert gradient norms", g["norms"], np.asarray(gnorms).transpose(1, 0, 2), TOL_EXACT,
                  metrics_path)
    else:
        ck.values("expert gradient norms (none logged: null)", 0 if g is None else 1, 0, TOL_EXACT, metrics_path)


def run_oracle(checkpoint, trace_dir, analysis_path):
    ckpt = resolve_checkpoint(checkpoint)
    config = load_json(os.path.join(ckpt, "config.json"))
    st = SafetensorsFile(os.path.join(ckpt, "model.safetensors"))
    index, arr = load_trace(trace_dir)
    a = load_json(analysis_path)
    ck = Checker()

    N, L, E = index["n_tokens"], index["n_layers"], index["n_experts"]
    experts, n_selected, loss = arr["experts"].astype(np.int64), arr["n_selected"], arr["loss"]
    channels = index["labels"]  # [{name, per, classes, array}]
    layers = get(a, "layers")
    if len(layers) != L:
        raise OracleError(f"analysis.json has {len(layers)} MoE layers, the trace {L}")
    ck.values("tokens, experts, top_k", [get(a, "tokens"), get(a, "experts"), get(a, "top_k")],
              [N, E, config["routing"]["top_k"]], TOL_EXACT, "analysis")
    ck.equal("label channels", [[c["name"], c["per"], c["classes"]] for c in get(a, "labels")],
             [[c["name"], c["per"], c["classes"]] for c in channels], "analysis")
    finite = loss[np.isfinite(loss)].astype(np.float64)
    ck.values("mean loss", get(a, "mean_loss"), finite.mean() if finite.size else np.nan, TOL_COUNTS, "analysis",
              relative=True)
    for ch in channels:
        check_loss_by_label(ck, get(a, "loss_by_label", ch["name"]), loss, arr[ch["array"]], ch["classes"],
                            f"loss by {ch['name']}")
    ck.values("trace: n_selected = used slots", n_selected, (experts >= 0).sum(2), TOL_EXACT, "trace")

    d, h = config["model"]["d_model"], config["moe"]["expert_hidden"]
    means = []
    for l, la in enumerate(layers):
        block = index["layers"][l]
        where = f"layer {block}"
        ex, ns = experts[l], n_selected[l].astype(np.int64)
        ck.values("layer index", get(la, "layer"), block, TOL_EXACT, where)
        slots = np.bincount(ex[ex >= 0], minlength=E)
        ck.values("expert slots", get(la, "expert_slots"), slots, TOL_EXACT, where)
        ept = get(la, "experts_per_token")
        means.append(ns.sum() / N if N else 0.0)
        ck.values("experts per token: tokens, histogram", [ept["tokens"]] + list(ept["histogram"]),
                  [N] + list(np.bincount(ns, minlength=E + 1)), TOL_EXACT, where)
        ck.values("experts per token: mean", ept["mean"], means[-1], TOL_COUNTS, where, relative=True)
        check_by_loss(ck, get(la, "experts_by_loss_quantile"), ns, loss, where)
        ck.equal("label channels analysed", sorted(get(la, "by_label").keys()), sorted(c["name"] for c in channels),
                 where)
        for ch in channels:
            name, labels, names = ch["name"], arr[ch["array"]], ch["classes"]
            by = get(la, "by_label", name)
            check_grouped(ck, f"experts per token by {name}", get(by, "experts_per_class"), ns, labels, names, where)
            check_specialisation(ck, name, get(by, "specialisation"), ex, labels, E, len(names), where)
        W = expert_weights(st, config, block)
        check_static(ck, get(la, "static"), W, E, d, h, where)
        check_health(ck, get(la, "health"), W, slots, E, where)

    check_active_params(ck, a, st, config, index["layers"], means)
    run_dir = os.path.dirname(os.path.dirname(os.path.normpath(ckpt)))
    check_metrics_log(ck, a, os.path.join(run_dir, "metrics.jsonl"), L)
    return ck.report()


# ---------------------------------------------------------------------------------------------------------------
# --self-test: the oracle's own computations on cases with known answers
# ---------------------------------------------------------------------------------------------------------------

def self_test():
    failures = []

    def expect(cond, what):
        if not cond:
            failures.append(what)

    rng = np.random.default_rng(3)
    for n in (1, 2, 5, 7):  # the Hungarian optimum equals the brute-force optimum
        w = rng.normal(size=(n, n))
        best = max(sum(w[i, p[i]] for i in range(n)) for p in itertools.permutations(range(n)))
        m = hungarian_max(w)
        expect(sorted(m) == list(range(n)) and abs(w[np.arange(n), m].sum() - best) < 1e-12, f"hungarian n={n}")
    perm = rng.permutation(9)
    expect((hungarian_max(np.eye(9)[perm] + 0.01 * rng.random((9, 9))) == perm).all(), "hungarian permuted eye")
    # NMI: a bijection gives 1, independence 0; a hand-computed 2x2 case.
    expect(abs(nmi(np.diag([3, 5, 2])) - 1) < 1e-12 and abs(nmi(np.outer([1, 2], [3, 1, 2]))) < 1e-12, "nmi 1/0")
    c = np.array([[2, 0], [1, 1]])
    p, px, py = c / 4, np.array([.5, .5]), np.array([.75, .25])
    mi = sum(p[i, j] * math.log(p[i, j] / (px[i] * py[j])) for i in range(2) for j in range(2) if p[i, j])
    hx, hy = -sum(q * math.log(q) for q in px), -sum(q * math.log(q) for q in py)
    expect(abs(nmi(c) - mi / ((hx + hy) / 2)) < 1e-12 and nmi(np.zeros((2, 2))) == 0, "nmi 2x2")
    expect(purity(c) == 0.75, "purity")
    ex = np.array([[0, 1], [1, -1], [1, 0]])
    expect((contingency(ex, np.array([0, 255, 1], dtype=np.uint8), 2, 2) == [[1, 1], [1, 1]]).all(), "contingency")
    expect(kendall_tau_vs_identity([0, 1, 2, 3]) == 1 and kendall_tau_vs_identity([3, 2, 1, 0]) == -1
           and abs(kendall_tau_vs_identity([1, 0, 2]) - 1 / 3) < 1e-15, "kendall tau")
    expect((average_ranks(np.array([3., 1, 3, 2])) == [3.5, 1, 3.5, 2]).all(), "average ranks")
    expect(abs(spearman(np.arange(5.), np.arange(5.) ** 3) - 1) < 1e-12, "spearman")
    s, i, r2 = linear_fit(np.array([0., 1, 2]), np.array([1., 3, 5]))
    expect(abs(s - 2) < 1e-12 and abs(i - 1) < 1e-12 and abs(r2 - 1) < 1e-12, "linear fit")
    expect(np.isnan(linear_fit(np.ones(3), np.arange(3.))[0]), "linear fit, constant x")
    x = rng.normal(size=(6, 4))
    expect(np.allclose(cosine_matrix(np.vstack([x[0], 2 * x[0], np.zeros(4)])),
                       [[1, 1, 0], [1, 1, 0], [0, 0, 0]]), "cosine")
    # PCA: points on a line along (3, 4) / 5 (not standardised): one component, all the variance.
    pts = np.outer(np.arange(-2., 3), [3, 4])
    comps, ratio, transform, _ = pca(pts, False, 2)
    expect(np.allclose(comps[0], [.6, .8]) and abs(ratio[0] - 1) < 1e-12 and np.allclose(comps[1], 0), "pca")
    expect(np.allclose(transform(pts)[:, 0], 5 * np.arange(-2., 3)), "pca coordinates")
    # The checker: a deviation above its tolerance fails, NaN against null passes.
    ck = Checker()
    ck.values("a", [1.0, None], [1.0, np.nan], 0, "x")
    ck.values("b", [1.0], [1.0 + 1e-6], 1e-9, "x")
    expect(ck.rows["a"][0] == 0 and ck.rows["b"][0] > 1e-9, "checker")

    for f in failures:
        print(f"self-test FAILED: {f}")
    print("self-test passed" if not failures else f"self-test FAILED: {len(failures)} check(s)")
    return 1 if failures else 0


def main(argv):
    ap = argparse.ArgumentParser(description="Independent numpy oracle for `moelab analyze report`'s numbers.")
    ap.add_argument("--checkpoint", help="the checkpoint folder (or run folder) the report analysed")
    ap.add_argument("--trace", help="the folder `moelab analyze trace` wrote for the same tokens")
    ap.add_argument("--analysis", help="the report's analysis.json")
    ap.add_argument("--self-test", action="store_true", help="check the oracle's own computations")
    args = ap.parse_args(argv)
    if args.self_test:
        return self_test()
    if not (args.checkpoint and args.trace and args.analysis):
        ap.error("--checkpoint, --trace and --analysis are required (or --self-test)")
    try:
        return 0 if run_oracle(args.checkpoint, args.trace, args.analysis) else 1
    except OracleError as e:
        print(f"analysis_oracle.py: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
