#!/usr/bin/env bash
# compile_probe.sh EXPECT HEADER COMPILER [FLAGS...]: compiles the one-line source
# `#include "HEADER"` with FLAGS (a library's include directories) in an empty directory.
#   EXPECT=compiles  passes when it compiles (a positive control: the layer sees HEADER).
#   EXPECT=missing   passes only when the compiler fails because HEADER is not found: the
#                    include roots keep that layer from seeing it (CMakeLists.txt,
#                    tally_include_root). Any other outcome fails, with the compiler's words.
set -uo pipefail
expect="$1" header="$2" compiler="$3"
shift 3
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
printf '#include "%s"\n' "$header" >"$dir/probe.cc"
output="$(cd "$dir" && "$compiler" -std=c++20 -fsyntax-only "$@" probe.cc 2>&1)"
status=$?
case "$expect" in
  compiles)
    if ((status == 0)); then
      echo "compiles: #include \"$header\" with $*"
      exit 0
    fi
    echo "expected #include \"$header\" to compile with $*; the compiler said:" >&2
    ;;
  missing)
    if ((status != 0)) && grep -qE "$header: No such file|'$header' file not found" <<<"$output"; then
      echo "refused as it should be: #include \"$header\" is not found with $*"
      exit 0
    fi
    if ((status == 0)); then
      echo "layer violation compiled: #include \"$header\" is visible with $*" >&2
    else
      echo "expected \"$header\" not to be found; the compiler failed otherwise:" >&2
    fi
    ;;
  *)
    echo "compile_probe.sh: EXPECT must be compiles or missing" >&2
    exit 2
    ;;
esac
printf '%s\n' "$output" >&2
exit 1
