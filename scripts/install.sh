#!/usr/bin/env bash
# Installs tscni into a CNI plugin directory: the tscni binary and one hardlink per plugin it
# implements (`tscni version --json` lists them). Builds first when dist/bin/tscni is missing.
# A file in the way that is not a tscni binary is left alone (and nothing is installed) unless --force.
#
#   scripts/install.sh [--dir /opt/cni/bin] [--force]
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=/opt/cni/bin
FORCE=
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) DIR="${2:?--dir needs a directory}"; shift 2 ;;
    --dir=*) DIR="${1#--dir=}"; shift ;;
    --force) FORCE=1; shift ;;
    -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

SRC=dist/bin/tscni
if [ ! -x "$SRC" ]; then
  [ -d node_modules ] || npm ci --no-audit --no-fund
  node scripts/build.mjs
fi
mapfile -t PLUGINS < <("$SRC" version --json | node -e 'for (const p of JSON.parse(require("fs").readFileSync(0, "utf8")).plugins) console.log(p)')

# The help text is in every tscni build and in no Go plugin: it tells our binary from another's.
MARKER='CNI plugins in one executable'
has_marker() { [ -f "$1" ] && [ ! -L "$1" ] && LC_ALL=C grep -qaF "$MARKER" "$1"; }
installed_ours=
has_marker "$DIR/tscni" && installed_ours=1
# A hardlink of an installed tscni is ours without reading it again.
is_ours() { { [ -n "$installed_ours" ] && [ ! -L "$1" ] && [ "$1" -ef "$DIR/tscni" ]; } || has_marker "$1"; }

mkdir -p "$DIR"
conflicts=()
for name in tscni "${PLUGINS[@]}"; do
  target="$DIR/$name"
  if [ -e "$target" ] || [ -L "$target" ]; then is_ours "$target" || conflicts+=("$target"); fi
done
if [ ${#conflicts[@]} -gt 0 ] && [ -z "$FORCE" ]; then
  echo "install: refusing to replace files that are not tscni binaries (use --force to replace them):" >&2
  printf '  %s\n' "${conflicts[@]}" >&2
  exit 1
fi

# Each name is swapped in by rename, so a runtime exec'ing a plugin mid-install sees the old or the new file.
tmp="$DIR/.tscni.install.$$"
trap 'rm -f "$tmp"' EXIT
cp "$SRC" "$tmp"
chmod 0755 "$tmp"
mv -f "$tmp" "$DIR/tscni"
for name in "${PLUGINS[@]}"; do
  ln -f "$DIR/tscni" "$tmp"
  mv -f "$tmp" "$DIR/$name"
done
echo "installed tscni $("$DIR/tscni" version --json | node -e 'console.log(JSON.parse(require("fs").readFileSync(0, "utf8")).version)') into $DIR: ${PLUGINS[*]}"
