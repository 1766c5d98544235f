#!/usr/bin/env bash
# Configures and builds the Release preset (build/release). Incremental: a second run rebuilds only what changed.
# Usage: scripts/build.sh [--moelab-only]
#   --moelab-only  only the `moelab` binary, which is all the main job runs: the tests and benchmarks are left out
#                  of the configuration, so GoogleTest and Google Benchmark need not be installed.
set -euo pipefail
cd "$(dirname "$0")/.."
with_tests=ON
target=all
case "${1:-}" in
  "") ;;
  --moelab-only) with_tests=OFF target=moelab ;;
  *) echo "scripts/build.sh: unknown option '$1' (expected nothing or --moelab-only)" >&2; exit 1 ;;
esac
cmake --preset release -DMOELAB_TESTS=$with_tests -DMOELAB_BENCH=$with_tests >/dev/null
cmake --build --preset release --target $target -j "$(nproc)"
