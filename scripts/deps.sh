#!/usr/bin/env bash
# Installs tallyd's build and test dependencies from Debian 12's packages, and the browser
# test's driver from npm (tests/browser/package-lock.json).
# Idempotent: it asks dpkg first and runs apt-get (update included) only when
# something is missing, so on a prepared machine it costs well under a second.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-program-options1.81-dev
  librocksdb-dev libspdlog-dev libfmt-dev
  libssl-dev  # libcrypto: SHA-256 of idempotent request bodies; libssl: https forwarding
  openssl     # the CLI: the TLS tests make a throwaway CA
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
  # The status page's browser test (tests/browser/): the browser and the driver's runtime.
  chromium nodejs
  # The PostgreSQL sink (daemon/upstream/pg_*): the client library, and a server for its
  # tests and benchmark (tests/support/pg_cluster.h starts a throwaway cluster).
  libpq-dev libpqxx-dev postgresql
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# npm: Debian's package, unless the installed nodejs already brings its own npm (NodeSource's
# does, and conflicts with Debian's npm).
if ! command -v npm >/dev/null 2>&1 &&
  ! dpkg-query -W -f='${Status}' npm 2>/dev/null | grep -q "install ok installed"; then
  missing+=(npm)
fi

if ((${#missing[@]} > 0)); then
  echo "deps: installing ${missing[*]}" >&2
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then
    sudo_cmd=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# The browser test's driver, puppeteer-core, from npm into tests/browser/node_modules as
# package-lock.json pins it; never a browser download (the test uses Debian's chromium).
# Skipped while node_modules was installed from this very lock (a copy of it is kept there).
browser_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/browser"
stamp="$browser_dir/node_modules/.installed-from-package-lock.json"
if ! cmp -s "$browser_dir/package-lock.json" "$stamp" 2>/dev/null; then
  echo "deps: installing tests/browser's npm packages (npm ci)" >&2
  (cd "$browser_dir" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >&2)
  cp "$browser_dir/package-lock.json" "$stamp"
fi
