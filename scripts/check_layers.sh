#!/usr/bin/env bash
# check_layers.sh [ROOT]: fails, naming file and line, on an #include that runs upward
# between the rooms of daemon/ (daemon/README.md), or that names a room not in the table
# below, or that climbs out of its folder with "..". ROOT is the repository (default: the
# one holding this script). The compiler already keeps core/ and persistence/ from seeing
# what lies above them (each library's include root exposes only itself and the layers
# below; docs/architecture.md, "Layers"); this check does the same for the rooms inside
# daemon/, which share one include root.
#
# A room may include its own room, the rooms of a lower rank, and the ground (the files
# directly in daemon/). Two different rooms of the same rank may not include each other.
set -euo pipefail

root="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
daemon="$root/daemon"

# The rooms and their ranks: a room sees ranks strictly below its own.
declare -A rank=(
  [ground]=0
  [ingest]=1
  [http]=1
  [ops]=2
  [upstream]=2
  [api]=3
  [app]=4
)

if [[ ! -d "$daemon" ]]; then
  echo "check_layers: no daemon/ under $root" >&2
  exit 2
fi

# The room of a path relative to daemon/ ("api/router.h" -> api, "log.h" -> ground).
room_of() {
  if [[ "$1" == */* ]]; then
    echo "${1%%/*}"
  else
    echo ground
  fi
}

violations=0
report() {
  echo "$1: $2" >&2
  violations=$((violations + 1))
}

while IFS= read -r -d '' file; do
  rel="${file#"$daemon"/}"
  from="$(room_of "$rel")"
  if [[ -z "${rank[$from]+x}" ]]; then
    report "daemon/$rel" "unknown room '$from' (add it to scripts/check_layers.sh and daemon/README.md)"
    continue
  fi
  # grep -n: "LINE:#include ..."; quoted includes only (system headers are <...>).
  while IFS= read -r hit; do
    line="${hit%%:*}"
    target="$(sed -E 's/^[^"]*"([^"]*)".*$/\1/' <<<"${hit#*:}")"
    where="daemon/$rel:$line"
    if [[ "$target" == *..* ]]; then
      report "$where" "includes \"$target\": no \"..\" in includes (name the path from the root)"
      continue
    fi
    [[ "$target" == daemon/* ]] || continue
    to="$(room_of "${target#daemon/}")"
    if [[ -z "${rank[$to]+x}" ]]; then
      report "$where" "includes \"$target\" from unknown room '$to'"
    elif [[ "$to" != "$from" && "$to" != ground && ${rank[$to]} -ge ${rank[$from]} ]]; then
      report "$where" "includes \"$target\": room '$from' (rank ${rank[$from]}) may not include room '$to' (rank ${rank[$to]})"
    fi
  done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$file" || true)
done < <(find "$daemon" -type f \( -name '*.h' -o -name '*.cc' \) -print0 | sort -z)

# core/ and persistence/: no climbing out with ".." (the include roots already stop the rest).
for layer in core persistence; do
  [[ -d "$root/$layer" ]] || continue
  while IFS= read -r hit; do
    report "${hit%%:*}:$(cut -d: -f2 <<<"$hit")" "includes with \"..\": name the path from the root"
  done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^"]*\.\.' \
             --include='*.h' --include='*.cc' "$root/$layer" | sed "s#^$root/##" || true)
done

if ((violations > 0)); then
  echo "check_layers: $violations include(s) break the layering (daemon/README.md)" >&2
  exit 1
fi
echo "check_layers: every include in daemon/ runs downward"
