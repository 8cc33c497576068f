#!/usr/bin/env bash
# Prints the path of cnitool (a real libcni client), building it into .tmp/cnitool first if missing.
# CNITOOL=/path overrides. Needs golang-go and golang-github-appc-cni-dev (scripts/setup.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${CNITOOL:-$PWD/.tmp/cnitool}"
if [ ! -x "$OUT" ]; then
  if [ ! -f ../shared/tools/cnitool/build.sh ]; then
    echo "cnitool: ../shared/tools/cnitool/build.sh not found — check out shared/ beside this repository, or set CNITOOL=/path/to/cnitool" >&2
    exit 1
  fi
  mkdir -p "$(dirname "$OUT")"
  # build.sh reads MODE (gopath|mod); vitest exports MODE=test to everything it starts.
  env -u MODE OUT="$OUT" sh ../shared/tools/cnitool/build.sh >&2
fi
echo "$OUT"
