#!/usr/bin/env bash
# Installs tallyd's build and test dependencies from Debian 12's packages.
# Idempotent: it asks dpkg first and runs apt-get (update included) only when
# something is missing, so on a prepared machine it costs well under a second.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-program-options1.81-dev
  librocksdb-dev libspdlog-dev libfmt-dev
  libssl-dev  # libcrypto: SHA-256 of idempotent request bodies
  libyaml-cpp-dev  # --mapping-file and the mapping presets (daemon/app/mapping_file.cc)
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev python3 curl
  # Benchmarks (bench/README.md): bench/compare.sh, cost_curves.sh, stall_profile.sh:
  nginx        # the HTTP floor (`return 202`); its own service starts only where systemd runs
  gnuplot-nox  # bench/cost_curves.sh draws the cost curves as PNG
  linux-perf   # bench/stall_profile.sh: the receiving thread's scheduler profile
  systemd  # systemd-analyze, for the unit checks (systemd/check_units.sh)
  # The Debian package and its checks (packaging/, tests/package/, monitoring/):
  dpkg-dev     # dpkg-shlibdeps, for the package's dependencies
  help2man     # the man page, from tallyd --help
  man-db       # man -w, in the install test
  lintian      # the package's checks
  prometheus   # promtool (check rules, test rules); its own service starts only where
               # systemd runs: `systemctl disable --now prometheus` there if unwanted
  python3-yaml # monitoring/check_metric_names.py reads the rules
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "deps: installing ${missing[*]}" >&2
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
