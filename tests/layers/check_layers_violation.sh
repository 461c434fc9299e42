#!/usr/bin/env bash
# check_layers_violation.sh SOURCE_ROOT: shows scripts/check_layers.sh failing on a violation.
# Copies daemon/ to a temporary tree, plants an upward include (the HTTP room including the
# app room's config.h, the include this restructuring removed), and passes only when the
# check fails naming that file and line. It also checks that the untouched copy passes, so a
# check that fails on everything cannot pass this test.
set -uo pipefail
src="$1"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp -r "$src/daemon" "$tmp/daemon"

if ! "$src/scripts/check_layers.sh" "$tmp" >/dev/null 2>&1; then
  echo "the untouched copy of daemon/ already fails the check" >&2
  "$src/scripts/check_layers.sh" "$tmp"
  exit 1
fi

victim="$tmp/daemon/http/server.h"
line=$(($(wc -l <"$victim") + 1))
echo '#include "daemon/app/config.h"' >>"$victim"
output="$("$src/scripts/check_layers.sh" "$tmp" 2>&1)"
status=$?
if ((status == 0)); then
  echo "check_layers.sh passed a tree where http/ includes app/:" >&2
  echo "$output" >&2
  exit 1
fi
if ! grep -q "daemon/http/server.h:$line: includes \"daemon/app/config.h\"" <<<"$output"; then
  echo "check_layers.sh failed without naming daemon/http/server.h:$line:" >&2
  echo "$output" >&2
  exit 1
fi

# A room the table does not know fails too.
mkdir -p "$tmp/daemon/web"
echo '#include "daemon/log.h"' >"$tmp/daemon/web/page.cc"
if "$src/scripts/check_layers.sh" "$tmp" >/dev/null 2>&1; then
  echo "check_layers.sh passed a room it has no rank for (daemon/web/)" >&2
  exit 1
fi
echo "check_layers.sh refuses the planted violations:"
echo "$output"
