#!/usr/bin/env bash
# npm run demo: installs what is missing, builds, installs tscni into a temporary plugin directory,
# makes network namespaces, runs the plugins through cnitool (a real libcni client) and shows
# what they did. Everything it makes is removed on exit, even on failure or Ctrl-C. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root (it creates network namespaces)" >&2; exit 1; }

bash scripts/setup.sh
node scripts/build.mjs
CNITOOL=$(bash scripts/cnitool.sh)

WORK=$(mktemp -d /tmp/tscni-demo.XXXXXX)
TAG="demo$$"             # prefix of every name the demo makes
NAMESPACES=()
cleanup() {
  for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bash scripts/install.sh --dir "$WORK/bin"
mkdir -p "$WORK/net.d" "$WORK/cache"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }
mkns() { ip netns add "$1"; NAMESPACES+=("$1"); }
conflist() { cat > "$WORK/net.d/$1.conflist"; }
cni() { NETCONFPATH="$WORK/net.d" CNI_PATH="$WORK/bin" CNI_CACHEDIR="$WORK/cache" "$CNITOOL" "$@"; }
pretty() { node -e 'console.log(JSON.stringify(JSON.parse(require("fs").readFileSync(0, "utf8")), null, 2))'; }

# ---------------------------------------------------------------------------------------------
# loopback
# ---------------------------------------------------------------------------------------------
step "loopback: bring up lo in a new container namespace (cniVersion 0.3.1, as containerd's CRI)"
NS="${TAG}-lo"
mkns "$NS"
conflist lo <<JSON
{ "cniVersion": "0.3.1", "name": "lo", "plugins": [ { "type": "loopback" } ] }
JSON
show ip -n "$NS" -brief link show lo
echo "cnitool add lo /run/netns/$NS"
CNI_IFNAME=lo cni add lo "/run/netns/$NS" | pretty
show ip -n "$NS" -brief addr show lo
show ip netns exec "$NS" ping -c 1 -W 1 127.0.0.1
echo "cnitool del lo /run/netns/$NS"
CNI_IFNAME=lo cni del lo "/run/netns/$NS"
show ip -n "$NS" -brief link show lo

# ---------------------------------------------------------------------------------------------
# bridge + host-local: two containers on one bridge, talking to each other
# >>> BRIDGE SECTION — to be filled by the bridge/host-local issue (use $TAG in every name) <<<
# ---------------------------------------------------------------------------------------------

# ---------------------------------------------------------------------------------------------
# portmap: a host port forwarded into a container
# >>> PORTMAP SECTION — to be filled by the portmap issue <<<
# ---------------------------------------------------------------------------------------------

# ---------------------------------------------------------------------------------------------
# overlay (vxlan): containers in two "hosts" (namespaces) on one overlay network
# >>> OVERLAY SECTION — to be filled by the vxlan issue <<<
# ---------------------------------------------------------------------------------------------

step "done: removing namespaces and $WORK"
