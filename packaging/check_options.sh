#!/bin/sh
# Checks that every option `tallyd --help` lists is documented, with its default:
#   check_options.sh man TALLYD PAGE    the man page (roff, rendered with man -l) names each
#                                       option, and shows "(=default)" beside it when --help does
#   check_options.sh conf TALLYD FILE   the configuration file has a commented line
#                                       "#name = default" for each option (but --help, --version,
#                                       --config and --print-mapping-preset, which a file cannot
#                                       hold), with --help's
#                                       default, or nothing after "=" when --help shows none
# Prints every missing option and exits 1 if there is one.
set -eu
mode=$1
tallyd=$2
file=$3
[ -r "$file" ] || { echo "cannot read $file" >&2; exit 1; }

# "--name arg (=default)" or "--name" at the start of a --help line: one "name default" per line
# (default "-" when none is shown).
# A flag whose value is optional shows "[=arg(=implicit)]" where others show " arg".
options=$("$tallyd" --help |
  sed -En 's/^  --([a-z0-9-]+)( arg| \[=arg\(=[^)]*\)\])?( \(=([^)]*)\))?.*/\1 \4/p' |
  awk '{ print $1, ($2 == "" ? "-" : $2) }')
count=$(printf '%s\n' "$options" | grep -c .)
if [ "$count" -lt 10 ]; then
  echo "found only $count options in tallyd --help: has its format changed?" >&2
  exit 1
fi

missing=0
case "$mode" in
  man)
    text=$(MANWIDTH=1000 man --nh --nj -l "$file" 2>/dev/null | col -b)
    while read -r name default; do
      lines=$(printf '%s\n' "$text" | grep -E -- "(^|[^a-z-])--$name([^a-z-]|\$)" || true)
      if [ -z "$lines" ]; then
        echo "man page: --$name is not listed" >&2
        missing=1
      elif [ "$default" != "-" ] && ! printf '%s\n' "$lines" | grep -qF -- "(=$default)"; then
        echo "man page: --$name does not show its default (=$default)" >&2
        missing=1
      fi
    done <<OPTIONS
$options
OPTIONS
    ;;
  conf)
    while read -r name default; do
      case "$name" in help | version | config | print-mapping-preset) continue ;; esac
      if [ "$default" = "-" ]; then
        want="#$name ="
      else
        want="#$name = $default"
      fi
      if ! grep -qxF -- "$want" "$file"; then
        echo "$file: no line \"$want\"" >&2
        missing=1
      fi
    done <<OPTIONS
$options
OPTIONS
    ;;
  *)
    echo "usage: $0 man|conf TALLYD FILE" >&2
    exit 2
    ;;
esac
[ "$missing" -eq 0 ] || exit 1
echo "$mode: all $count options of tallyd --help are in $file"
