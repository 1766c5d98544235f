#!/usr/bin/env bash
# Fails, naming each file and line, when a C++ file of the project differs from what clang-format makes of it with
# .clang-format. Usage: scripts/check-format.sh [--fix]   (--fix rewrites the files in place instead)
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(find src include tests bench fuzz -name '*.cpp' -o -name '*.h' | sort)
if [[ "${1:-}" == "--fix" ]]; then
  clang-format -i "${files[@]}"
elif ! clang-format --dry-run -Werror "${files[@]}"; then
  echo "scripts/check-format.sh: the files above differ from .clang-format; scripts/check-format.sh --fix rewrites them" >&2
  exit 1
fi
