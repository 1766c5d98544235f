#!/usr/bin/env bash
# Trains every preset of configs/ for a short run on Brown and prints one markdown table: validation loss and
# mean experts per token of each MoE layer (from `moelab eval --json`). Usage:
#   scripts/compare-presets.sh [STEPS] [PRESET...]     (default 150 steps, every preset)
# Runs go to runs/compare/<preset>; a preset whose run already finished is only evaluated again, and one that
# stopped before its checkpoint is trained anew (--overwrite).
set -euo pipefail
cd "$(dirname "$0")/.."
moelab=build/release/moelab
steps=${1:-150}
shift || true
presets=("$@")
if ((${#presets[@]} == 0)); then
  for f in configs/*.toml; do presets+=("$(basename "$f" .toml)"); done
fi
mkdir -p runs/compare
printf '| preset | steps | val loss | val perplexity | mean experts per token by layer |\n|---|---|---|---|---|\n'
for p in "${presets[@]}"; do
  out=runs/compare/$p
  if [[ ! -f $out/checkpoints/latest ]]; then
    $moelab train "configs/$p.toml" --set train.steps="$steps" --set train.warmup_steps=$((steps / 10)) \
      --set train.eval_every=0 --set train.checkpoint_every=0 --set "train.out_dir=\"$out\"" --overwrite > "$out.log" 2>&1 ||
      { echo "| $p | failed: see $out.log | | | |"; continue; }
  fi
  $moelab eval "$out" --json | python3 -c '
import json, sys
r = json.load(sys.stdin)
experts = " / ".join("%.2f" % l["mean_experts_per_token"] for l in r["routing"]) or "dense"
print("| %s | %s | %.4f | %.1f | %s |" % (sys.argv[1], sys.argv[2], r["loss"], r["perplexity"], experts))' "$p" "$steps"
done
