#!/usr/bin/env bash
# Installs what tests, the demo and the benchmarks need, when it is missing: Debian packages (as root)
# and npm dependencies. Safe to run again: it does nothing when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."
APT_PACKAGES=(iproute2 iptables nftables iputils-ping golang-go golang-github-appc-cni-dev nmap
  containernetworking-plugins hyperfine etcd-server etcd-client iperf3 conntrack ethtool socat psmisc
  podman runc containerd busybox-static)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "setup: need root to install: ${missing[*]}" >&2; exit 1; fi
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
