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
# overlay (vxlan): pods on three simulated nodes reach each other, peers from a file, then etcd
# A node is a namespace with eth0 on an underlay bridge that lives in its own namespace; the plugin
# runs inside the node's namespace, as a runtime on that node would run it.
# ---------------------------------------------------------------------------------------------
UNDER="${TAG}-under"
mkns "$UNDER"
ip -n "$UNDER" link add br0 type bridge
ip -n "$UNDER" addr add 192.168.77.254/24 dev br0
ip -n "$UNDER" link set br0 up
OVERLAY_PIDS=()
overlay_stop() { for p in "${OVERLAY_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; OVERLAY_PIDS=(); }
trap 'overlay_stop; cleanup' EXIT
attach() { # NS UNDERLAY-IP: eth0 on the underlay bridge, default route through it
  local port="p${2##*.}"
  ip -n "$1" link add eth0 type veth peer name "$port" netns "$UNDER"
  ip -n "$1" addr add "$2/24" dev eth0
  ip -n "$1" link set eth0 up
  ip -n "$1" link set lo up
  ip -n "$1" route add default via 192.168.77.254
  ip -n "$UNDER" link set "$port" master br0 up
}
overlay_node() { # I PEER-SOURCE-JSON: node namespace ${TAG}-nodeI at 192.168.77.I with its own config dir
  local node="${TAG}-node$1" dir="$WORK/node$1"
  mkns "$node"
  attach "$node" "192.168.77.$1"
  mkdir -p "$dir/cache"
  cat > "$dir/overlay.conflist" <<JSON
{ "cniVersion": "1.0.0", "name": "overlay",
  "plugins": [ { "type": "vxlan", "network": "10.244.0.0/16", $2,
                 "stateDir": "$dir/state", "ipam": { "dataDir": "$dir/ipam" } } ] }
JSON
}
node_cni() { # NODE-INDEX cnitool-args...: cnitool run on that node
  local i=$1; shift
  ip netns exec "${TAG}-node$i" env NETCONFPATH="$WORK/node$i" CNI_PATH="$WORK/bin" CNI_CACHEDIR="$WORK/node$i/cache" "$CNITOOL" "$@"
}
POD_IPS=()
POD_NS=()
add_pods() { # NODE-INDEX...: two pods per node
  for i in "$@"; do
    for k in 1 2; do
      local pod="${TAG}-n${i}pod$k"
      mkns "$pod"
      local ip
      ip=$(node_cni "$i" add overlay "/run/netns/$pod" | node -e 'console.log(JSON.parse(require("fs").readFileSync(0,"utf8")).ips[0].address.split("/")[0])')
      echo "  node$i/pod$k  $ip"
      POD_NS+=("$pod"); POD_IPS+=("$ip")
    done
  done
}
ping_all() { # every pod pings every other pod
  local ok=0 fail=0
  for a in "${!POD_NS[@]}"; do
    for b in "${!POD_IPS[@]}"; do
      [ "$a" = "$b" ] && continue
      if ip netns exec "${POD_NS[$a]}" ping -c 1 -W 1 "${POD_IPS[$b]}" >/dev/null; then ok=$((ok + 1)); else fail=$((fail + 1)); echo "  FAILED ${POD_IPS[$a]} -> ${POD_IPS[$b]}"; fi
    done
  done
  echo "  $ok of $((ok + fail)) pod pairs reach each other"
  [ "$fail" = 0 ]
}
del_pods() {
  for idx in "${!POD_NS[@]}"; do
    local pod="${POD_NS[$idx]}" i="${POD_NS[$idx]#"${TAG}-n"}"
    node_cni "${i%%pod*}" del overlay "/run/netns/$pod"
  done
  POD_NS=(); POD_IPS=()
}

step "overlay (vxlan), peers from a file: three nodes, two pods on each"
cat > "$WORK/peers.json" <<JSON
[ { "subnet": "10.244.1.0/24", "ip": "192.168.77.1" },
  { "subnet": "10.244.2.0/24", "ip": "192.168.77.2" },
  { "subnet": "10.244.3.0/24", "ip": "192.168.77.3" } ]
JSON
for i in 1 2 3; do overlay_node "$i" "\"subnet\": \"10.244.$i.0/24\", \"peersFile\": \"$WORK/peers.json\""; done
add_pods 1 2 3
echo "node1: its VXLAN device, and a route + permanent neighbour + FDB entry per peer"
show ip -n "${TAG}-node1" -d link show tscni.1
show ip -n "${TAG}-node1" route show dev tscni.1
show ip -n "${TAG}-node1" neigh show dev tscni.1
show ip netns exec "${TAG}-node1" bridge fdb show dev tscni.1
ping_all
echo "DEL every pod; the devices stay for the next pods; tscni vxlan teardown removes them"
del_pods
for i in 1 2 3; do ip netns exec "${TAG}-node$i" "$WORK/bin/tscni" vxlan teardown --conf "$WORK/node$i/overlay.conflist" >/dev/null; done
show ip -n "${TAG}-node1" -brief link show

step "overlay (vxlan), subnets leased from etcd: three more nodes, each running tscni vxlan sync --watch"
mkns "${TAG}-etcd"
attach "${TAG}-etcd" 192.168.77.250
ETCD_URL="http://192.168.77.250:23791"
ip netns exec "${TAG}-etcd" etcd --name demo --data-dir "$WORK/etcd" --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
  --listen-peer-urls http://127.0.0.1:23792 --initial-advertise-peer-urls http://127.0.0.1:23792 --initial-cluster demo=http://127.0.0.1:23792 >"$WORK/etcd.log" 2>&1 &
OVERLAY_PIDS+=($!)
until ip netns exec "${TAG}-etcd" etcdctl --endpoints "$ETCD_URL" endpoint health >/dev/null 2>&1; do sleep 0.2; done
for i in 4 5 6; do
  overlay_node "$i" "\"etcd\": { \"endpoints\": [\"$ETCD_URL\"], \"prefix\": \"/demo/network\", \"leaseTTL\": 60 }"
  ip netns exec "${TAG}-node$i" "$WORK/bin/tscni" vxlan sync --watch --conf "$WORK/node$i/overlay.conflist" 2>"$WORK/node$i/sync.log" &
  OVERLAY_PIDS+=($!)
done
for i in 4 5 6; do until [ "$(ip -n "${TAG}-node$i" route show dev tscni.1 2>/dev/null | grep -c onlink)" = 2 ]; do sleep 0.1; done; done
echo "the leases, in flannel's layout:"
show ip netns exec "${TAG}-etcd" etcdctl --endpoints "$ETCD_URL" get --prefix /demo/network/subnets/
add_pods 4 5 6
ping_all
echo "node6 leaves (teardown drops its lease); the other nodes' watchers remove its routes"
ip netns exec "${TAG}-node6" "$WORK/bin/tscni" vxlan teardown --conf "$WORK/node6/overlay.conflist" >/dev/null
until [ "$(ip -n "${TAG}-node4" route show dev tscni.1 | grep -c onlink)" = 1 ]; do sleep 0.1; done
show ip -n "${TAG}-node4" route show dev tscni.1
del_pods
overlay_stop

step "done: removing namespaces and $WORK"
