#!/usr/bin/env bash
# run_fuzzer.sh FUZZER SEED_DIR WORK_DIR [libFuzzer args...]
# Runs one libFuzzer target for $TALLY_FUZZ_SECONDS (default 60) over its seed corpus plus a
# scratch corpus kept in WORK_DIR between runs. Exit code non-zero on any finding; the input
# is then in WORK_DIR/<target>-artifacts/ and printed (base64) below.
set -euo pipefail
fuzzer=$1
seeds=$2
work=$3
shift 3
name=$(basename "$fuzzer")
seconds=${TALLY_FUZZ_SECONDS:-60}
corpus="$work/$name-corpus"
artifacts="$work/$name-artifacts"
mkdir -p "$corpus" "$artifacts"
rm -f "$artifacts"/*
log="$work/$name.log"
status=0
"$fuzzer" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$artifacts/" "$@" "$corpus" "$seeds" >"$log" 2>&1 || status=$?
# libFuzzer logs every new input; show the start, and the end (the report, on a finding).
grep -m 3 -E '^INFO: (Seed|Loaded|-max_len)|INITED' "$log" || true
if ((status != 0)); then
  echo "== $name FAILED (exit $status); last lines of $log:"
  grep -v '^#[0-9]' "$log" | tail -n 150
else
  grep -E '^(Done|stat::)' "$log" || true
fi
for f in "$artifacts"/*; do
  [[ -e $f ]] || continue
  echo "== $name finding: $f ($(stat -c %s "$f") bytes), base64:"
  base64 -w 100 "$f" | head -c 4000
  echo
done
exit "$status"
