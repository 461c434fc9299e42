#!/usr/bin/env bash
# Installs what is missing, builds everything and runs the whole test suite through CTest.
# Build trees are reused between runs (build/ for the normal build).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc)

echo "== build (Release) =="
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs"
echo "== tests (Release) =="
ctest --test-dir build --output-on-failure -j "$jobs"
