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
PIDS=()                  # background servers
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
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
# bridge + host-local + portmap: containerd's default networks (a loopback net, then bridge with
# host-local and portmap) for two containers. The "host" is a namespace of its own, so its bridge,
# addresses and iptables rules never touch this machine's; the plugins run inside it, as a runtime
# on that host would run them.
# ---------------------------------------------------------------------------------------------
HOST="${TAG}-host"
BR="${TAG}br"
NET="${TAG}-net"
LO_NET="${TAG}-loopback"
mkns "$HOST"
ip -n "$HOST" link set lo up
mkdir -p "$WORK/host.d" "$WORK/host-cache"
cat > "$WORK/host.d/99-loopback.conflist" <<JSON
{ "cniVersion": "1.0.0", "name": "$LO_NET", "plugins": [ { "type": "loopback" } ] }
JSON
cat > "$WORK/host.d/10-bridge.conflist" <<JSON
{ "cniVersion": "1.0.0", "name": "$NET",
  "plugins": [
    { "type": "bridge", "bridge": "$BR", "isGateway": true, "ipMasq": true, "promiscMode": true,
      "ipam": { "type": "host-local", "dataDir": "$WORK/ipam",
                "ranges": [[{ "subnet": "10.88.77.0/24" }]], "routes": [{ "dst": "0.0.0.0/0" }] } },
    { "type": "portmap", "capabilities": { "portMappings": true } } ] }
JSON
host_cni() { ip netns exec "$HOST" env NETCONFPATH="$WORK/host.d" CNI_PATH="$WORK/bin" CNI_CACHEDIR="$WORK/host-cache" "$CNITOOL" "$@"; }
on_host() { printf '\033[2mhost $ %s\033[0m\n' "$*"; ip netns exec "$HOST" env PATH="$WORK/bin:$PATH" "$@"; }
summary() { # a CNI result, one line per interface and address
  node -e '
    const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
    r.interfaces.forEach((i, n) => console.log(`  interface ${n}: ${i.name.padEnd(16)} ${i.mac}${i.sandbox ? "  in " + i.sandbox : ""}`));
    for (const ip of r.ips) console.log(`  address:     ${ip.address} on interface ${ip.interface}, gateway ${ip.gateway}`);
    for (const rt of r.routes ?? []) console.log(`  route:       ${rt.dst}${rt.gw ? " via " + rt.gw : ""}`);'
}
container_ip() { ip -n "$1" -4 -o addr show dev eth0 | awk '{ split($4, a, "/"); print a[1] }'; }

step "bridge + host-local + portmap: two containers on one bridge (containerd's default chain)"
show cat "$WORK/host.d/10-bridge.conflist"
for c in a b; do
  mkns "${TAG}-$c"
  caps='{}' note=''
  [ "$c" = a ] && caps='{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}' note=' (CAP_ARGS: host port 8080 -> 80)'
  echo "cnitool add $LO_NET, then $NET, for container ${TAG}-$c$note"
  CNI_CONTAINERID="${TAG}-$c" CNI_IFNAME=lo host_cni add "$LO_NET" "/run/netns/${TAG}-$c" >/dev/null
  CNI_CONTAINERID="${TAG}-$c" CAP_ARGS="$caps" host_cni add "$NET" "/run/netns/${TAG}-$c" | summary
done
A_IP=$(container_ip "${TAG}-a")
B_IP=$(container_ip "${TAG}-b")
echo "the host's side: the bridge with the gateway address, a veth per container"
on_host ip -brief addr show dev "$BR"
on_host ip -brief link show master "$BR"
reach() { # NS ADDRESS WHAT: one ping, one line
  if ip netns exec "$1" ping -c 1 -W 1 "$2" >/dev/null; then echo "  ${1#"${TAG}-"} -> $3 ($2): ping ok"; else echo "  ${1#"${TAG}-"} -> $3 ($2): FAILED"; return 1; fi
}
echo "pings:"
reach "${TAG}-a" "$B_IP" "container b"
reach "${TAG}-b" "$A_IP" "container a"
reach "${TAG}-a" 10.88.77.1 "the gateway"
echo "a TCP server on port 80 in container a, reached from the host through host port 8080:"
ip netns exec "${TAG}-a" socat TCP-LISTEN:80,reuseaddr,fork SYSTEM:"echo hello from container a at $A_IP" &
PIDS+=($!)
timeout 5 bash -c "until ip netns exec ${TAG}-a ss -Hltn 'sport = :80' | grep -q LISTEN; do sleep 0.05; done"
for addr in 10.88.77.1 127.0.0.1; do
  reply=$(on_host socat -T 2 - "TCP:$addr:8080" </dev/null)
  echo "$reply"
  [ "${reply##*$'\n'}" = "hello from container a at $A_IP" ]
done
echo "the host's nat rules for the containers (masquerade from bridge, DNAT from portmap), found by container ID:"
ip netns exec "$HOST" iptables-save -t nat > "$WORK/nat.rules"
CHAINS=$(grep -E "${TAG}-[ab]\b" "$WORK/nat.rules" | grep -o -- '-j CNI-[A-Za-z0-9-]*' | cut -c4- | sort -u | paste -sd '|')
[ -n "$CHAINS" ] || { echo "demo: no nat rules found for the containers" >&2; exit 1; }
OURS="${TAG}-[ab]\b|^-A ($CHAINS) |^:($CHAINS) "
grep -E "$OURS" "$WORK/nat.rules" | grep -v '^:' | sed 's/^/  /'
echo "tscni shows the addresses host-local handed out:"
on_host tscni ipam ls --data-dir "$WORK/ipam"
on_host tscni ipam ls "$NET" --data-dir "$WORK/ipam" --json
for c in a b; do
  echo "cnitool del $NET, then $LO_NET, for container ${TAG}-$c"
  CNI_CONTAINERID="${TAG}-$c" host_cni del "$NET" "/run/netns/${TAG}-$c"
  CNI_CONTAINERID="${TAG}-$c" CNI_IFNAME=lo host_cni del "$LO_NET" "/run/netns/${TAG}-$c"
done
echo "after DEL: no reservation, no veth on the bridge, no rule for the containers"
on_host tscni ipam ls --data-dir "$WORK/ipam"
on_host ip -brief link show master "$BR"
left=$(ip netns exec "$HOST" iptables-save -t nat | grep -cE "$OURS" || true)
echo "  nat rules and chains of the containers left: $left"
[ "$left" = 0 ]

# ---------------------------------------------------------------------------------------------
# NetworkPolicy (netpol): a default-deny namespace where only the frontend reaches the backend, on
# its named port. The chain is bridge + host-local + netpol on the same "host" namespace; pods get
# their namespace and name from CNI_ARGS (as kubelet's CRI passes them), their labels from the Pod
# objects in the objects directory. tscni policy sync compiles the objects into table inet
# tscni_policy; each ADD puts its pod into the sets before it returns.
# ---------------------------------------------------------------------------------------------
step "NetworkPolicy: namespace shop denies all ingress; the frontend may reach the backend's port \"http\""
POL_NET="${TAG}-policy"
POL_BR="${TAG}pol"
mkdir -p "$WORK/objects"
cat > "$WORK/host.d/20-policy.conflist" <<JSON
{ "cniVersion": "1.0.0", "name": "$POL_NET",
  "plugins": [
    { "type": "bridge", "bridge": "$POL_BR", "isGateway": true,
      "ipam": { "type": "host-local", "dataDir": "$WORK/ipam", "ranges": [[{ "subnet": "10.88.78.0/24" }]] } },
    { "type": "netpol", "objects": "$WORK/objects", "stateDir": "$WORK/netpol", "nodeName": "demo-node",
      "podSubnets": ["10.88.78.0/24"] } ] }
JSON
cat > "$WORK/objects/shop.yaml" <<YAML
apiVersion: v1
kind: Namespace
metadata: { name: shop }
---
apiVersion: v1
kind: Pod
metadata: { namespace: shop, name: frontend, labels: { app: frontend } }
spec: { nodeName: demo-node, containers: [ { name: web, image: x } ] }
---
apiVersion: v1
kind: Pod
metadata: { namespace: shop, name: backend, labels: { app: backend } }
spec: { nodeName: demo-node, containers: [ { name: api, image: x, ports: [ { name: http, containerPort: 8080 } ] } ] }
---
apiVersion: v1
kind: Pod
metadata: { namespace: shop, name: other, labels: { app: other } }
spec: { nodeName: demo-node, containers: [ { name: tool, image: x } ] }
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { namespace: shop, name: default-deny }
spec: { podSelector: {}, policyTypes: [ Ingress ] }
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { namespace: shop, name: frontend-to-backend }
spec:
  podSelector: { matchLabels: { app: backend } }
  ingress:
    - from: [ { podSelector: { matchLabels: { app: frontend } } } ]
      ports: [ { port: http } ]
YAML
show cat "$WORK/objects/shop.yaml"
POLICY_CONF="$WORK/host.d/20-policy.conflist"
on_host tscni policy sync --conf "$POLICY_CONF"
for pod in frontend backend other; do
  mkns "${TAG}-$pod"
  echo "cnitool add $POL_NET for shop/$pod"
  CNI_CONTAINERID="${TAG}-$pod" CNI_ARGS="K8S_POD_NAMESPACE=shop;K8S_POD_NAME=$pod" host_cni add "$POL_NET" "/run/netns/${TAG}-$pod" | summary
done
BACKEND_IP=$(container_ip "${TAG}-backend")
ip netns exec "${TAG}-backend" socat TCP-LISTEN:8080,reuseaddr,fork SYSTEM:"echo hello from the backend" &
PIDS+=($!)
timeout 5 bash -c "until ip netns exec ${TAG}-backend ss -Hltn 'sport = :8080' | grep -q LISTEN; do sleep 0.05; done"
connect() { # FROM-POD: one TCP connect to the backend's port 8080, one line
  if reply=$(ip netns exec "${TAG}-$1" socat -T 1 - "TCP:$BACKEND_IP:8080,connect-timeout=1" </dev/null 2>/dev/null) && [ -n "$reply" ]; then
    echo "  shop/$1 -> shop/backend:8080: connected ($reply)"; return 0
  fi
  echo "  shop/$1 -> shop/backend:8080: no connection"; return 1
}
connect frontend
! connect other
echo "why: tscni policy explain"
on_host tscni policy explain --conf "$POLICY_CONF" shop/frontend shop/backend 8080/tcp
on_host tscni policy explain --conf "$POLICY_CONF" shop/other shop/backend 8080/tcp
echo "the pods each policy selects:"
on_host tscni policy ls --conf "$POLICY_CONF"
for pod in frontend backend other; do
  CNI_CONTAINERID="${TAG}-$pod" CNI_ARGS="K8S_POD_NAMESPACE=shop;K8S_POD_NAME=$pod" host_cni del "$POL_NET" "/run/netns/${TAG}-$pod"
done
ip netns exec "$HOST" nft delete table inet tscni_policy

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
POD_IPS=()               # "IPv4 [IPv6]" of each pod
POD_NS=()
add_pods() { # NODE-INDEX...: two pods per node
  for i in "$@"; do
    for k in 1 2; do
      local pod="${TAG}-n${i}pod$k"
      mkns "$pod"
      local ips
      ips=$(node_cni "$i" add overlay "/run/netns/$pod" | node -e 'console.log(JSON.parse(require("fs").readFileSync(0,"utf8")).ips.map((i) => i.address.split("/")[0]).join(" "))')
      echo "  node$i/pod$k  $ips"
      POD_NS+=("$pod"); POD_IPS+=("$ips")
    done
  done
}
settle_ipv6() { # a new IPv6 address answers once duplicate address detection is done (~1 s)
  for ns in "$@"; do timeout 10 bash -c "while ip -n '$ns' -6 addr show tentative | grep -q inet6; do sleep 0.1; done"; done
}
ping_all() { # every pod pings every other pod, on each of its addresses
  local ok=0 fail=0
  for a in "${!POD_NS[@]}"; do
    for b in "${!POD_IPS[@]}"; do
      [ "$a" = "$b" ] && continue
      for ip in ${POD_IPS[$b]}; do
        if ip netns exec "${POD_NS[$a]}" ping -c 1 -W 1 "$ip" >/dev/null; then ok=$((ok + 1)); else fail=$((fail + 1)); echo "  FAILED ${POD_NS[$a]} -> $ip"; fi
      done
    done
  done
  echo "  $ok of $((ok + fail)) pod pairs (by each address) reach each other"
  [ "$fail" = 0 ]
}
del_pods() {
  for idx in "${!POD_NS[@]}"; do
    local pod="${POD_NS[$idx]}" i="${POD_NS[$idx]#"${TAG}-n"}"
    node_cni "${i%%pod*}" del overlay "/run/netns/$pod"
  done
  POD_NS=(); POD_IPS=()
}

step "overlay (vxlan), dual-stack, peers from a file: three nodes, two pods on each, each pod with an IPv4 and an IPv6 address"
cat > "$WORK/peers.json" <<JSON
[ { "subnet": "10.244.1.0/24", "subnet6": "fd00:10:244:1::/64", "ip": "192.168.77.1" },
  { "subnet": "10.244.2.0/24", "subnet6": "fd00:10:244:2::/64", "ip": "192.168.77.2" },
  { "subnet": "10.244.3.0/24", "subnet6": "fd00:10:244:3::/64", "ip": "192.168.77.3" } ]
JSON
for i in 1 2 3; do
  overlay_node "$i" "\"network6\": \"fd00:10:244::/56\", \"subnet\": \"10.244.$i.0/24\", \"subnet6\": \"fd00:10:244:$i::/64\", \"peersFile\": \"$WORK/peers.json\""
done
add_pods 1 2 3
settle_ipv6 "${TAG}-node1" "${TAG}-node2" "${TAG}-node3" "${POD_NS[@]}"
echo "node1: its VXLAN device (one for both families), and per peer a route + permanent neighbour of each family and one FDB entry"
show ip -n "${TAG}-node1" -d link show tscni.1
show ip -n "${TAG}-node1" route show dev tscni.1
show ip -n "${TAG}-node1" -6 route show dev tscni.1
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
