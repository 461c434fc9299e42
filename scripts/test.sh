#!/usr/bin/env bash
# Installs what is missing, builds everything and runs the whole test suite through CTest,
# in four stages (stops at the first failing one, exit code non-zero):
#   1. release: Release build of every target, the whole suite;
#   2. asan:    AddressSanitizer + UndefinedBehaviorSanitizer build, the whole suite;
#   3. tsan:    ThreadSanitizer build, the core and persistence tests;
#   4. fuzz:    clang libFuzzer targets (tests/fuzz/), each run for TALLY_FUZZ_SECONDS.
# Build trees are reused between runs: build/, build-asan/, build-tsan/, build-fuzz/.
# Sanitizer reports from any process (tallyd started by integration tests included) go to
# files under the tree's sanitizer-logs/; a stage with any report fails even if every test
# passed. Measured times per stage: docs/reliability.md.
#
# Environment (all optional):
#   TALLY_TEST_STAGES   stages to run, in order (default "release asan tsan fuzz")
#   TALLY_BUILD_PREFIX  build tree prefix (default "build": build, build-asan, ...)
#   TALLY_FUZZ_SECONDS  seconds per fuzz target (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
root=$(pwd)
jobs=$(nproc)
stages=${TALLY_TEST_STAGES:-release asan tsan fuzz}
prefix=${TALLY_BUILD_PREFIX:-build}
fuzz_seconds=${TALLY_FUZZ_SECONDS:-60}
export TALLY_FUZZ_SECONDS="$fuzz_seconds"

stage_count=$(wc -w <<<"$stages")
stage_index=0
header() {
  stage_index=$((stage_index + 1))
  echo
  echo "================================================================"
  echo "== stage ${stage_index}/${stage_count}: $1"
  echo "================================================================"
}

# build <dir> <cmake args...> -- <targets...>: configures (first run) and builds, timed
# (wall and CPU). The tests' wall time is in ctest's own "Total Test time" line.
build() {
  local dir=$1
  shift
  local args=() targets=()
  while (($#)) && [[ $1 != -- ]]; do
    args+=("$1")
    shift
  done
  if (($#)); then
    shift
    targets=("$@")
  fi
  local TIMEFORMAT="== build of $dir: %0R s wall, %0U s user + %0S s sys CPU"
  time {
    cmake -S . -B "$dir" -G Ninja "${args[@]}" >/dev/null
    if ((${#targets[@]})); then
      cmake --build "$dir" -j "$jobs" --target "${targets[@]}"
    else
      cmake --build "$dir" -j "$jobs"
    fi
  }
}


# sanitizer_clean <dir>: empties the tree's sanitizer log directory and prints its path.
sanitizer_logs() {
  local logs="$root/$1/sanitizer-logs"
  rm -rf "$logs"
  mkdir -p "$logs"
  echo "$logs"
}

# sanitizer_check <logs dir>: fails (printing them) if any sanitizer wrote a report.
sanitizer_check() {
  local reports
  reports=$(find "$1" -type f -size +0 | sort)
  if [[ -n $reports ]]; then
    echo "== sanitizer reports (tests may have passed, the stage fails):"
    for f in $reports; do
      echo "---- $f"
      head -c 20000 "$f"
    done
    return 1
  fi
}

run_release() {
  header "release: Release build, whole suite"
  build "$prefix" -DCMAKE_BUILD_TYPE=Release
  ctest --test-dir "$prefix" --output-on-failure -j "$jobs"
}

run_asan() {
  header "asan: AddressSanitizer + UndefinedBehaviorSanitizer, whole suite"
  local dir="$prefix-asan"
  build "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTALLY_SANITIZE=address \
    -DTALLY_BUILD_BENCH=OFF
  local logs
  logs=$(sanitizer_logs "$dir")
  # detect_leaks stays on: LeakSanitizer runs at each process's exit.
  # tests/lsan.supp says why each suppressed leak is there (a library's, on a fault path).
  ASAN_OPTIONS="log_path=$logs/asan:abort_on_error=0:detect_stack_use_after_return=1:strict_string_checks=1" \
    UBSAN_OPTIONS="log_path=$logs/ubsan:print_stacktrace=1:halt_on_error=1" \
    LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0" \
    ctest --test-dir "$dir" --output-on-failure -j "$jobs"
  sanitizer_check "$logs"
}

run_tsan() {
  header "tsan: ThreadSanitizer, core and persistence tests"
  local dir="$prefix-tsan"
  build "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTALLY_SANITIZE=thread \
    -DTALLY_BUILD_BENCH=OFF -- tally_core_tests tally_persistence_tests
  local logs
  logs=$(sanitizer_logs "$dir")
  # StoreCrash is left out: it SIGKILLs a helper within 50-600 ms of its start, which under
  # TSan is often before the helper's first flush; it is about crash atomicity, not races,
  # and runs in the release and asan stages. tests/tsan.supp says why each entry is there.
  TSAN_OPTIONS="log_path=$logs/tsan:halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/tsan.supp" \
    ctest --test-dir "$dir" --output-on-failure -j "$jobs" -L '^(core|persistence)$' \
    -E '^StoreCrash[.]'
  sanitizer_check "$logs"
}

run_fuzz() {
  header "fuzz: libFuzzer targets, ${fuzz_seconds} s each"
  local dir="$prefix-fuzz"
  build "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
    -DTALLY_BUILD_FUZZ=ON -DTALLY_BUILD_TESTS=OFF -DTALLY_BUILD_BENCH=OFF -- tally_fuzz
  # The fuzz runs are CTest tests (label fuzz), one per core at a time.
  ctest --test-dir "$dir" --output-on-failure -j "$jobs" -L '^fuzz$'
}

for stage in $stages; do
  case $stage in
    release | asan | tsan | fuzz) "run_$stage" ;;
    *)
      echo "unknown stage '$stage' (release, asan, tsan, fuzz)" >&2
      exit 2
      ;;
  esac
done
