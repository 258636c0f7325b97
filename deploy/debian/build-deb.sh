#!/usr/bin/env bash
# Builds the overlay-agent Debian package from the agent bundle: `deploy/debian/build-deb.sh [outdir]`
# (default dist/). It holds
#   /opt/overlay-agent/            overlay-agent.js, proto/, THIRD-PARTY-LICENSES (scripts/build-agent.sh)
#   /lib/systemd/system/overlay-agent.service
#   /usr/share/doc/overlay-agent/  overlay-agent.env.example, copyright
# Depends on nodejs >= 20.12 (NodeSource's, or Debian's from trixie on), iproute2, nftables,
# conntrack and libjemalloc2 (the unit preloads it: deploy/overlay-agent-runtime.conf).
# Installing creates the system user overlay-agent and /etc/overlay; it neither enables nor
# starts the unit: write /etc/overlay/overlay-agent.env first (see deploy/README.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/dist}
cd "$root"

scripts/build-agent.sh >/dev/null
version=$(node -p "require('./package.json').version")
licence=$(node -p "require('./package.json').license")
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"

install -d -m 0755 "$stage/DEBIAN" "$stage/opt" "$stage/lib/systemd/system" "$stage/usr/share/doc/overlay-agent"
cp -r dist/agent "$stage/opt/overlay-agent"
install -m 0644 deploy/systemd/overlay-agent.service "$stage/lib/systemd/system/"
install -m 0644 deploy/systemd/overlay-agent.env.example "$stage/usr/share/doc/overlay-agent/"
cat >"$stage/usr/share/doc/overlay-agent/copyright" <<COPYRIGHT
overlay-agent: $licence (see the repository's package.json).
The bundled npm packages' licences: /opt/overlay-agent/THIRD-PARTY-LICENSES.
COPYRIGHT

cat >"$stage/DEBIAN/control" <<CONTROL
Package: overlay-agent
Version: $version
Architecture: all
Maintainer: overlay-controller maintainers <root@localhost>
Depends: nodejs (>= 20.12), iproute2, nftables, conntrack, adduser, libjemalloc2
Section: net
Priority: optional
Installed-Size: $(du -sk "$stage" | cut -f1)
Description: overlay SDN hypervisor agent (VXLAN, bridges, nftables firewall)
 overlay-agent programs a hypervisor's VXLAN devices, bridges, forwarding
 entries and security-group firewall from overlayd's desired state. It runs
 as the user overlay-agent with CAP_NET_ADMIN only (systemd unit
 overlay-agent.service). The firewall needs br_netfilter loaded, or a kernel
 with bridge conntrack (CONFIG_NF_CONNTRACK_BRIDGE).
CONTROL

cat >"$stage/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  adduser --system --group --no-create-home --home /nonexistent --quiet overlay-agent
  # Left as it is when it exists: overlayd may share it on this machine.
  [ -d /etc/overlay ] || install -d -m 0750 -g overlay-agent /etc/overlay
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    # An upgrade restarts a running agent; a first install waits for /etc/overlay/overlay-agent.env.
    if systemctl is-active --quiet overlay-agent; then systemctl restart overlay-agent; fi
  fi
  [ -f /etc/overlay/overlay-agent.env ] || echo "overlay-agent: write /etc/overlay/overlay-agent.env (example in /usr/share/doc/overlay-agent), then systemctl enable --now overlay-agent"
fi
POSTINST
cat >"$stage/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
# Stopping leaves the kernel's overlay state in place: VMs keep forwarding.
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
  systemctl disable --now overlay-agent >/dev/null 2>&1 || true
fi
PRERM
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm"

mkdir -p "$out"
deb="$out/overlay-agent_${version}_all.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb: $(stat -c %s "$deb") bytes"
