#!/bin/sh
# Checks tallyd's systemd units with systemd-analyze (Debian package: systemd).
#   check_units.sh verify DIR    systemd-analyze verify: no error and no warning at all
#   check_units.sh security DIR  systemd-analyze security --offline: exposure 2.0 or lower
set -eu
mode=$1
dir=$2
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "systemd-analyze not found: install the systemd package (scripts/deps.sh does)" >&2
  exit 1
fi
case "$mode" in
  verify)
    # verify prints problems it does not count as errors; treat any output as a failure.
    out=$(systemd-analyze verify "$dir/tallyd.service" "$dir/tallyd.socket" 2>&1) || {
      echo "$out" >&2
      exit 1
    }
    if [ -n "$out" ]; then
      echo "$out" >&2
      exit 1
    fi
    echo "systemd-analyze verify: tallyd.service and tallyd.socket are clean"
    ;;
  security)
    # --threshold is in tenths: fail above an overall exposure of 2.0.
    systemd-analyze security --offline=true --threshold=20 "$dir/tallyd.service" 2>&1 |
      tail -n 1
    systemd-analyze security --offline=true --threshold=20 "$dir/tallyd.service" >/dev/null 2>&1
    ;;
  *)
    echo "usage: $0 verify|security DIR" >&2
    exit 2
    ;;
esac
