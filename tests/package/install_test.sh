#!/usr/bin/env bash
# The Debian package as an operator installs it (docs/operations.md, "The Debian package"):
# dpkg -i, tallyd --version, systemd-analyze verify on the installed units, man -w tallyd,
# the installed binary run with the installed configuration on free loopback ports counting
# one line, dpkg -i again over an edited conffile (kept), then dpkg -r (keeps the data and
# the conffile) and dpkg -P (removes them), with what is left checked after each.
# Needs root: skipped (exit 77) otherwise. Refuses to run where tallyd is installed or its
# directories exist, so it never clobbers an operator's; removes everything it installed or
# made, even when it fails.
#   install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
source=$2

if [[ $(id -u) -ne 0 ]]; then
  echo "SKIPPED: the package install test needs root (dpkg -i); run it as root, as CI does"
  exit 77
fi
deb=$(ls -t "$build"/tallyd_*.deb 2>/dev/null | head -n 1)
if [[ -z $deb ]]; then
  echo "no tallyd_*.deb in $build: cmake --build $build --target package" >&2
  exit 1
fi
for tool in dpkg systemd-analyze man curl python3; do
  command -v "$tool" >/dev/null || { echo "$tool not found: run scripts/deps.sh" >&2; exit 1; }
done

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
status() { dpkg-query -W -f='${Status}' tallyd 2>/dev/null || true; }

# Never touch an operator's tallyd.
owned=(/usr/bin/tallyd /etc/tallyd /var/lib/tallyd /var/lib/private/tallyd
  /var/lib/tallyd-checkpoints /var/lib/private/tallyd-checkpoints
  /lib/systemd/system/tallyd.service)
[[ -z $(status) || $(status) == "unknown ok not-installed" ]] ||
  fail "tallyd is already installed here ($(status)); the test will not replace it"
for path in "${owned[@]}"; do
  [[ ! -e $path && ! -L $path ]] || fail "$path exists; the test will not touch it"
done

# dpkg waits for nobody: retry while another apt/dpkg holds the lock (up to 5 minutes).
run_dpkg() {
  local deadline=$((SECONDS + 300)) out
  while true; do
    if out=$(dpkg "$@" 2>&1); then
      echo "$out"
      return 0
    fi
    if [[ $out != *lock* ]] || ((SECONDS > deadline)); then
      echo "$out" >&2
      return 1
    fi
    sleep 1 # waiting for another process's dpkg lock
  done
}

tallyd_pid=
work=$(mktemp -d /tmp/tallyd-package-test.XXXXXX)
cleanup() {
  local rc=$?
  if [[ -n $tallyd_pid ]] && kill -0 "$tallyd_pid" 2>/dev/null; then
    kill -KILL "$tallyd_pid" 2>/dev/null || true
    wait "$tallyd_pid" 2>/dev/null || true
  fi
  if [[ -n $(status) && $(status) != *not-installed ]]; then
    run_dpkg -P tallyd >/dev/null || echo "cleanup: dpkg -P tallyd failed" >&2
  fi
  # Checked absent at the start, so whatever is here now is the test's.
  rm -rf "${owned[@]}" "$work"
  exit $rc
}
trap cleanup EXIT

version=$(dpkg-deb -f "$deb" Version)
echo "== dpkg -i $(basename "$deb")"
run_dpkg -i "$deb"
[[ $(status) == "install ok installed" ]] || fail "after dpkg -i the status is '$(status)'"

echo "== tallyd --version"
out=$(tallyd --version)
[[ $out == "tallyd $version" ]] || fail "tallyd --version says '$out', the package is $version"
[[ $(command -v tallyd) == /usr/bin/tallyd ]] || fail "tallyd is $(command -v tallyd)"

echo "== systemd-analyze verify /lib/systemd/system/tallyd.{service,socket}"
"$source/systemd/check_units.sh" verify /lib/systemd/system
grep -qx 'ExecStart=/usr/bin/tallyd --config /etc/tallyd/tallyd.conf' \
  /lib/systemd/system/tallyd.service || fail "tallyd.service does not run /usr/bin/tallyd"
[[ -L /etc/systemd/system/multi-user.target.wants/tallyd.service ]] ||
  fail "postinst did not enable tallyd.service"

echo "== man -w tallyd"
page=$(man -w tallyd) || fail "man -w tallyd finds no page"
[[ $page == /usr/share/man/man8/tallyd.8.gz ]] || fail "man -w tallyd: $page"
echo "$page"

dpkg-query -W -f='${Conffiles}' tallyd | grep -q '^ /etc/tallyd/tallyd.conf ' ||
  fail "/etc/tallyd/tallyd.conf is not a conffile"

echo "== the installed binary, the installed configuration, one line counted"
# What systemd's StateDirectory= with DynamicUser= makes: /var/lib/tallyd -> private/tallyd.
mkdir -p -m 0700 /var/lib/private/tallyd
ln -s private/tallyd /var/lib/tallyd
ports=$(python3 -c '
import socket
ps = []
for _ in range(2):
    t = socket.socket(); t.bind(("127.0.0.1", 0)); ps.append(t)
print(" ".join(str(t.getsockname()[1]) for t in ps))')
read -r udp_port http_port <<<"$ports"
/usr/bin/tallyd --config /etc/tallyd/tallyd.conf --data-dir /var/lib/tallyd \
  --udp-listen "127.0.0.1:$udp_port" --http-listen "127.0.0.1:$http_port" \
  >"$work/tallyd.log" 2>&1 &
tallyd_pid=$!
deadline=$((SECONDS + 30))
until curl -sf "127.0.0.1:$http_port/readyz" >/dev/null; do
  kill -0 "$tallyd_pid" 2>/dev/null || { cat "$work/tallyd.log" >&2; fail "tallyd exited"; }
  ((SECONDS < deadline)) || { cat "$work/tallyd.log" >&2; fail "tallyd not ready in 30 s"; }
  sleep 0.05 # polling /readyz, bounded by the deadline
done
echo -n "apikey.7.success:1|c" >"/dev/udp/127.0.0.1/$udp_port"
deadline=$((SECONDS + 30))
until curl -sf -X POST "127.0.0.1:$http_port/admin/flush" >/dev/null &&
  summary=$(curl -sf "127.0.0.1:$http_port/admin/apikey-stats/summary") &&
  [[ $summary == *'"total_requests":1,'* ]]; do
  ((SECONDS < deadline)) || fail "the line was not counted in 30 s: ${summary:-no answer}"
done
echo "$summary"
kill -TERM "$tallyd_pid"
rc=0
wait "$tallyd_pid" || rc=$?
tallyd_pid=
[[ $rc -eq 0 ]] || { cat "$work/tallyd.log" >&2; fail "tallyd exited $rc on SIGTERM"; }
[[ -f /var/lib/private/tallyd/CURRENT ]] || fail "no database in /var/lib/private/tallyd"

echo "== dpkg -i again (an upgrade in place): an edited conffile and the enablement are kept"
echo "# edited by the package install test" >>/etc/tallyd/tallyd.conf
run_dpkg -i "$deb"
[[ $(status) == "install ok installed" ]] ||
  fail "after the second dpkg -i the status is '$(status)'"
grep -qx '# edited by the package install test' /etc/tallyd/tallyd.conf ||
  fail "the upgrade replaced the edited conffile"
[[ -L /etc/systemd/system/multi-user.target.wants/tallyd.service ]] ||
  fail "the upgrade lost the enablement of tallyd.service"

dpkg-query -L tallyd | sort >"$work/files"

echo "== dpkg -r tallyd: the data and the conffile stay"
run_dpkg -r tallyd
[[ $(status) == "deinstall ok config-files" ]] || fail "after dpkg -r the status is '$(status)'"
for path in /usr/bin/tallyd /lib/systemd/system/tallyd.service /lib/systemd/system/tallyd.socket \
  /usr/share/man/man8/tallyd.8.gz /usr/share/doc/tallyd; do
  [[ ! -e $path ]] || fail "dpkg -r left $path"
done
[[ -f /etc/tallyd/tallyd.conf ]] || fail "dpkg -r removed the conffile"
[[ -L /var/lib/tallyd && -f /var/lib/private/tallyd/CURRENT ]] || fail "dpkg -r removed the data"

echo "== dpkg -P tallyd: nothing left"
run_dpkg -P tallyd
[[ -z $(status) || $(status) == *not-installed ]] || fail "after dpkg -P the status is '$(status)'"
left=()
while read -r path; do
  # Directories the package shares with others (/usr/bin, /etc, ...) stay.
  if [[ -e $path && ! -d $path ]] || [[ $path == *tallyd* && -e $path ]]; then
    left+=("$path")
  fi
done <"$work/files"
for path in "${owned[@]}" /etc/systemd/system/tallyd.service /etc/systemd/system/tallyd.socket \
  /etc/systemd/system/multi-user.target.wants/tallyd.service \
  /var/lib/systemd/deb-systemd-helper-enabled/tallyd.service.dsh-also \
  /var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/tallyd.service \
  /var/lib/systemd/deb-systemd-helper-masked/tallyd.service; do
  if [[ -e $path || -L $path ]]; then
    left+=("$path")
  fi
done
((${#left[@]} == 0)) || fail "dpkg -P left: ${left[*]}"
echo "PASS: installed, ran, counted, removed (data and conffile kept) and purged (nothing left)"
