#!/usr/bin/env bash
# bench/run_micro.sh: builds and runs the whole Google Benchmark micro suite (every
# bench/*_bench target: core_bench.cc, persistence_bench.cc, ...) and writes JSON.
#
#   bench/run_micro.sh [--build-dir DIR] [--out DIR] [--repetitions N] [-- benchmark flags]
#
# Writes DIR/<target>.json per suite (--benchmark_out, format json) with N repetitions
# (default 5) reporting aggregates only, so medians can be quoted. Default build dir:
# build-bench; default out dir: bench/results (not committed).
set -euo pipefail
cd "$(dirname "$0")/.."
build=build-bench out=bench/results reps=5 extra=()
while (($#)); do
  case $1 in
    --build-dir) build=$2; shift ;;
    --out) out=$2; shift ;;
    --repetitions) reps=$2; shift ;;
    --) shift; extra=("$@"); break ;;
    -h | --help) sed -n 2,10p "$0"; exit 0 ;;
    *) echo "run_micro.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
mapfile -t targets < <(sed -n 's/^add_executable(\([a-z_]*_bench\)\b.*/\1/p' bench/CMakeLists.txt)
if ((${#targets[@]} == 0)); then
  echo "run_micro.sh: no *_bench targets in bench/CMakeLists.txt" >&2
  exit 1
fi
cmake --build "$build" -j2 --target "${targets[@]}"
mkdir -p "$out"
for t in "${targets[@]}"; do
  echo "== $t ==" >&2
  "$build/bench/$t" --benchmark_out="$out/$t.json" --benchmark_out_format=json \
    --benchmark_repetitions="$reps" --benchmark_report_aggregates_only=true "${extra[@]}"
done
echo "JSON written: $(printf '%s ' "${targets[@]/#/$out/}" | sed 's/ /.json /g')" >&2
