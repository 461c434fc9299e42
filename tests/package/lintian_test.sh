#!/bin/sh
# lintian on the .deb built in BUILD: fails on any error, and on any warning whose tag
# docs/operations.md does not name (each warning is justified there, "lintian").
#   lintian_test.sh BUILD_DIR OPERATIONS_MD
set -eu
build=$1
doc=$2
if ! command -v lintian >/dev/null 2>&1; then
  echo "lintian not found: run scripts/deps.sh (Debian package lintian)" >&2
  exit 1
fi
deb=$(ls -t "$build"/tallyd_*.deb 2>/dev/null | head -n 1)
if [ -z "$deb" ]; then
  echo "no tallyd_*.deb in $build: cmake --build $build --target package" >&2
  exit 1
fi

out=$(lintian --tag-display-limit 0 --fail-on none "$deb" 2>&1)
echo "lintian $(basename "$deb"):"
echo "${out:-(nothing)}"
status=0
if printf '%s\n' "$out" | grep -q '^E: '; then
  echo "lintian reports errors" >&2
  status=1
fi
for tag in $(printf '%s\n' "$out" | sed -n 's/^W: [^:]*: \([a-z0-9+.-]*\).*/\1/p' | sort -u); do
  if ! grep -qF -- "\`$tag\`" "$doc"; then
    echo "lintian warning $tag is not justified in $doc" >&2
    status=1
  fi
done
exit $status
