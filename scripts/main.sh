#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: install what is missing, build, fetch the Brown corpus and
# tokenize it, train the default config (configs/brown-tiny.toml), evaluate it on the validation and test splits,
# write the results to runs/brown-tiny/ (results-val.json, results-test.json, metrics.jsonl, checkpoints/), and
# write its analysis report to runs/brown-tiny/analysis/report/ (report.html, analysis.json, figures/).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
moelab=build/release/moelab
[[ -f data/brown/meta.json ]] || $moelab data brown --out data/brown
$moelab train configs/brown-tiny.toml "$@"
for split in val test; do
  $moelab eval runs/brown-tiny --split "$split" --json > "runs/brown-tiny/results-$split.json"
  $moelab eval runs/brown-tiny --split "$split"
done
$moelab analyze report runs/brown-tiny --split val
echo "results: runs/brown-tiny/results-val.json runs/brown-tiny/results-test.json; metrics: runs/brown-tiny/metrics.jsonl"
echo "report: runs/brown-tiny/analysis/report/report.html"
