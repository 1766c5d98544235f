#!/usr/bin/env bash
# Fuzzes the readers of user files for a bounded time: safetensors checkpoints, TOML configs and config.json, a
# Hugging Face model's config.json and tokenizer.json, data folders (meta.json, token and label files). Builds the
# fuzz targets with clang, libFuzzer and the address and undefined-behaviour sanitizers (build/fuzz), seeds each
# from valid inputs, runs each for SECONDS, and prints how many inputs each ran. Any crash, sanitizer report or exception other than
# moelab::Error fails it, leaving the input that caused it in build/fuzz/findings/ (rerun one with
# build/fuzz/fuzz/TARGET FILE).
# Usage: scripts/fuzz.sh [SECONDS per target, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
cmake -S . -B build/fuzz -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Release -DMOELAB_FUZZ=ON \
  -DMOELAB_TESTS=OFF -DMOELAB_BENCH=OFF >/dev/null
targets=(fuzz_safetensors fuzz_config fuzz_hf_config fuzz_data_folder fuzz_tokenizer_json)
cmake --build build/fuzz -j "$(nproc)" --target "${targets[@]}"
mkdir -p build/fuzz/findings
total=0
for target in "${targets[@]}"; do
  corpus="build/fuzz/corpus/$target"
  mkdir -p "$corpus"
  if [[ $target == fuzz_config ]]; then
    for preset in configs/*.toml; do { printf '\0'; cat "$preset"; } > "$corpus/$(basename "$preset")"; done
  fi
  log="build/fuzz/$target.log"
  if ! MOELAB_FUZZ_SEEDS="$corpus" "build/fuzz/fuzz/$target" "$corpus" -max_total_time="$seconds" \
    -print_final_stats=1 -artifact_prefix=build/fuzz/findings/"$target"- > "$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz: $target FAILED (its input is in build/fuzz/findings/; the whole log in $log)" >&2
    exit 1
  fi
  runs=$(awk '/stat::number_of_executed_units/ { print $NF }' "$log")
  total=$((total + runs))
  echo "fuzz: $target: $runs inputs in $seconds s, no failure"
done
echo "fuzz: $total inputs in all, no failure"
