#!/bin/sh
# Runs tallyd for help2man, with the two headings of --help spelled as help2man expects
# ("Usage:" makes the SYNOPSIS, "Options:" the OPTIONS section).
#   help_for_help2man.sh TALLYD --help|--version
tallyd=$1
shift
if [ "$1" = --help ]; then
  "$tallyd" --help | sed 's/^usage: /Usage: /; s/^tallyd options:$/Options:/'
else
  exec "$tallyd" "$@"
fi
