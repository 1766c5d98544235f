#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: install what is missing, build the `moelab` binary, fetch the Brown
# corpus and tokenize it, train the default config (configs/brown-tiny.toml), evaluate it on the validation and test
# splits, write the results to runs/brown-tiny/ (results-val.json, results-test.json, metrics.jsonl, checkpoints/),
# and write its analysis report to runs/brown-tiny/analysis/report/ (report.html, analysis.json, figures/).
# Arguments go to `moelab train` (e.g. --set train.steps=20 for a quick check). Ends with the time of each phase.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/phases.sh
moelab=build/release/moelab
run=runs/brown-tiny

evaluate() {
  for split in val test; do
    $moelab eval $run --split "$split" --json > "$run/results-$split.json"
    $moelab eval $run --split "$split"
  done
}

phase install scripts/install-deps.sh
phase build scripts/build.sh --moelab-only
[[ -f data/brown/meta.json ]] || phase data $moelab data brown --out data/brown
phase train $moelab train configs/brown-tiny.toml "$@"
phase evaluate evaluate
phase report $moelab analyze report $run --split val
phases_summary
echo "results: $run/results-val.json $run/results-test.json; metrics: $run/metrics.jsonl; checkpoints: $run/checkpoints/"
echo "report: $run/analysis/report/report.html"
