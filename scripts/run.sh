#!/usr/bin/env bash
# Installs what is missing, builds tallyd (Release) and runs it in the foreground on its
# defaults: data in ./tallyd-data, UDP 127.0.0.1:8125, HTTP 127.0.0.1:8126.
# Extra arguments go to tallyd, e.g. scripts/run.sh --log-level debug
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target tallyd
exec build/daemon/tallyd "$@"
